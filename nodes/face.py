"""Nodes: face engine and parser loaders, and Encode identity (reference photos -> PuLID identity)."""

import logging

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from ..pulid_flux.engine.encoder import (
    FUSIONS,
    EncodeCache,
    FaceModels,
    encode_identity,
)
from ..pulid_flux.errors import NoFaceError
from ..pulid_flux.face import FACE_ORDERS, load_bisenet, load_engine
from ..pulid_flux.face.region import parse_region_list
from ..pulid_flux.images import to_uint8
from . import paths
from .compat import advanced
from .face_region import PAYLOAD_KEY, picker_data, send_to_canvas
from .previews import persistent_ui
from .types import (
    EvaClipType,
    FaceEngineType,
    FaceParserType,
    PulidFluxType,
    PulidIdentityType,
    category,
    display_name,
    node_id,
)

log = logging.getLogger(__name__)

LICENSE_TIP = ("insightface's pretrained models (antelopev2, buffalo_l) are for non-commercial research only; "
               "dlib's models are not so restricted.")


class LoadFaceEngine(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("LoadFaceEngine"),
            display_name=display_name("Load face engine"),
            category=category("Face"),
            description="A face detector + recognizer. insightface (antelopev2: the ArcFace vector PuLID was trained "
                        "on) from models/insightface/models/<pack>, or dlib (CPU). " + LICENSE_TIP,
            inputs=[
                io.Combo.Input("engine", options=["insightface", "dlib"], default="insightface",
                               tooltip="insightface for PuLID identities (512-d ArcFace); dlib can detect and align "
                                       "but its 128-d descriptor cannot feed the IDFormer. " + LICENSE_TIP),
                io.Combo.Input("pack", options=paths.insightface_packs(),
                               tooltip="insightface model pack folder (antelopev2 for PuLID). A nested "
                                       "antelopev2/antelopev2 folder from the zip is accepted."),
                io.Combo.Input("provider", options=["auto", "cuda", "cpu"], default="auto",
                               tooltip="onnxruntime provider for insightface: auto uses CUDA when available; the "
                                       "log says which one runs."),
                io.Int.Input("det_size", default=640, min=160, max=1280, step=32, **advanced(io.Int.Input),
                             tooltip="insightface detection size (the official PuLID uses 640)."),
                io.Combo.Input("dlib_detector", options=["hog", "cnn"], default="hog", **advanced(io.Combo.Input),
                               tooltip="dlib detector: HOG (fast) or the CNN (better on small or turned faces)."),
            ],
            outputs=[FaceEngineType.Output(display_name="face_engine", tooltip="Detection + recognition.")],
        )

    @classmethod
    def execute(cls, engine, pack="antelopev2", provider="auto", det_size=640, dlib_detector="hog") -> io.NodeOutput:
        if engine == "insightface":
            return io.NodeOutput(load_engine("insightface", pack_dir=paths.insightface_pack_dir(pack), device=provider,
                                             det_size=det_size))
        return io.NodeOutput(load_engine("dlib", detector=dlib_detector))


class LoadFaceParser(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("LoadFaceParser"),
            display_name=display_name("Load face parser"),
            category=category("Face"),
            description="BiSeNet face parsing (facexlib's parsing_bisenet.pth from models/facexlib), used to paint "
                        "everything but the face white before EVA-CLIP reads it.",
            inputs=[io.Combo.Input("parser_file", options=folder_paths.get_filename_list(paths.FACEXLIB),
                                   tooltip="parsing_bisenet.pth (tensors only; loaded safely).")],
            outputs=[FaceParserType.Output(display_name="face_parser", tooltip="The BiSeNet parser.")],
        )

    @classmethod
    def execute(cls, parser_file) -> io.NodeOutput:
        path = folder_paths.get_full_path_or_raise(paths.FACEXLIB, parser_file)
        return io.NodeOutput(load_bisenet(path, device=mm.unet_offload_device()))


def _patcher(module: torch.nn.Module):
    """One ModelPatcher per loaded module (kept on the loader's output), so ComfyUI moves it."""
    patcher = getattr(module, "_comfy_patcher_encode", None)
    if patcher is None:
        patcher = comfy.model_patcher.ModelPatcher(module, load_device=mm.get_torch_device(),
                                                   offload_device=mm.unet_offload_device())
        module._comfy_patcher_encode = patcher
    return patcher


def _cache(pulid) -> EncodeCache:
    # The loader's output is the cache: keys carry every model's fingerprint and the image hash.
    cache = getattr(pulid, "_encode_cache", None)
    if cache is None:
        cache = pulid._encode_cache = EncodeCache()
    return cache


def _preview(result) -> torch.Tensor:
    tiles = [np.concatenate([aligned, features], axis=1) for aligned, features in result.previews]
    return torch.from_numpy(np.stack(tiles).astype(np.float32) / 255.0)


def _status_line(status) -> str:
    if not status.face_found:
        return f"{status.name}: NO FACE, skipped"
    box = [round(v) for v in status.bbox]
    if status.region is not None:
        line = f"{status.name}: face from the drawn region ({status.region['mode']}), box {box}"
    else:
        line = (f"{status.name}: face {status.face_index} ({status.face_order}) of {status.faces_detected}, "
                f"box {box}")
    return line + (", ArcFace from the aligned crop" if status.fallback_used else "")


REGION_TIP = ("Optional face region per photo, replacing detection (drawn in the canvas: drag a box on the photo "
              "shown on this node; paint/erase a mask). JSON: a list with one entry per image, null or "
              "{\"box\": [x, y, width, height], \"mask\": \"data:image/png;base64,...\", \"hash\": ...} in the "
              "photo's pixels; a region drawn on another photo is dropped with a warning. See docs/face_region.md.")


class EncodeIdentity(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("EncodeIdentity"),
            **persistent_ui(),  # the face picker survives cached runs and page reloads
            display_name=display_name("Encode identity"),
            category=category("PuLID"),
            description="Reference photo(s) -> a PuLID identity. One chosen face gives both the ArcFace vector and "
                        "the aligned crop, so group photos never mix two people. Several photos are fused. Results "
                        "are cached by image content and settings.",
            inputs=[
                io.Image.Input("images", tooltip="One or more reference photos (an IMAGE batch)."),
                FaceEngineType.Input("face_engine", tooltip="insightface antelopev2 (detects and recognizes)."),
                EvaClipType.Input("eva_clip", tooltip="From Load EVA-CLIP."),
                FaceParserType.Input("face_parser", tooltip="From Load face parser."),
                PulidFluxType.Input("pulid_flux", tooltip="From Load PuLID-Flux model (its IDFormer encodes)."),
                io.Combo.Input("face_choice", options=list(FACE_ORDERS), default="largest",
                               tooltip="Which face of a photo: the largest, or counted in an order "
                                       "(left-to-right, …) with face_index."),
                io.Int.Input("face_index", default=0, min=0, max=64,
                             tooltip="Index of the face in the chosen order (0 = first)."),
                io.Combo.Input("fusion", options=list(FUSIONS), default="mean",
                               tooltip="How several photos combine: mean of their ID tokens (standard), per-token "
                                       "max norm, or weighted by detection score x face size."),
                FaceEngineType.Input("recognizer", optional=True,
                                     tooltip="Optional other engine for the ArcFace vector (must be 512-d); "
                                             "face_engine then only detects and aligns."),
                # Appended last: saved workflows store widget values by position.
                io.String.Input("face_region", default="", optional=True, multiline=False, dynamic_prompts=False,
                                tooltip=REGION_TIP),
            ],
            hidden=[io.Hidden.unique_id],   # the canvas is told which node has no face (face_region.EVENT)
            outputs=[
                PulidIdentityType.Output(display_name="identity", tooltip="For Apply PuLID-Flux / Save identity."),
                io.Image.Output(display_name="faces", tooltip="Per photo: the aligned face and the gray face on "
                                                              "white that EVA-CLIP saw."),
                io.String.Output(display_name="status", tooltip="Per-photo face choice and warnings."),
            ],
        )

    @classmethod
    def execute(cls, images, face_engine, eva_clip, face_parser, pulid_flux, face_choice="largest", face_index=0,
                fusion="mean", recognizer=None, face_region="") -> io.NodeOutput:
        frames = [to_uint8(frame) for frame in images]
        regions = parse_region_list(face_region)
        models = FaceModels(detector=face_engine, recognizer=recognizer or face_engine, parser=face_parser,
                            eva=eva_clip, pulid=pulid_flux)
        mm.load_models_gpu([_patcher(eva_clip), _patcher(face_parser), _patcher(pulid_flux.encoder)])
        try:
            result = encode_identity(frames, models, names=[f"image {i + 1}" for i in range(len(frames))],
                                     face_order=face_choice, face_index=face_index, fusion=fusion,
                                     cache=_cache(pulid_flux), regions=regions)
        except NoFaceError as exc:
            # The canvas shows the photos anyway, so the user can draw the face region the error asks for.
            send_to_canvas(cls, picker_data(cls, frames, exc.images, face_choice, face_index, face_engine))
            raise
        lines = [_status_line(status) for status in result.images] + [f"WARNING: {w}" for w in result.warnings]
        text = "\n".join(lines)
        data = picker_data(cls, frames, result.images, face_choice, face_index, face_engine)
        return io.NodeOutput(result.identity, _preview(result), text,
                             ui={**ui.PreviewText(text).as_dict(), PAYLOAD_KEY: [data]})


NODE_LIST = [LoadFaceEngine, LoadFaceParser, EncodeIdentity]
