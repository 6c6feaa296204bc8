"""Nodes: identity-LoRA dataset preparation on IMAGE batches (filter -> crop -> caption -> save).

Glue over ``pulid_flux.dataset``; the CLI (``pulid-studio dataset prepare``) does the same on a folder.
"""

import logging
import os

import torch
from comfy_api.v0_0_2 import io, ui

from ..pulid_flux.dataset import (PrepareOptions, TrainingConfig, caption_batch, crop_batch, filter_images,
                                  save_batch)
from ..pulid_flux.images import to_uint8
from .compat import advanced
from .types import FaceEngineType, category, display_name, node_id

log = logging.getLogger(__name__)

CATEGORY = category("Dataset")
DatasetType = io.Custom("PULID_DATASET")         # pulid_flux.dataset.DatasetBatch
_DEFAULTS = PrepareOptions()


def _progress_bar(total: int):
    """A ComfyUI progress bar as a ``progress(done, total, stage)`` callback."""
    import comfy.utils

    bar = comfy.utils.ProgressBar(max(total, 1))
    return lambda done, count, stage: bar.update_absolute(done, count)


def _frames(batches) -> list:
    """RGB uint8 frames from IMAGE inputs (one batch tensor, or a list of them of different sizes)."""
    if batches is None:
        return []
    if isinstance(batches, torch.Tensor):
        batches = [batches]
    frames = []
    for batch in batches:
        if batch.ndim != 4 or batch.shape[-1] not in (3, 4):
            raise ValueError(f"expected IMAGE batches (B, H, W, 3), got shape {tuple(batch.shape)}")
        frames.extend(to_uint8(frame[..., :3]) for frame in batch)
    return frames


def _to_image(rgb) -> torch.Tensor:
    return torch.from_numpy(rgb.copy()).float().div(255.0).unsqueeze(0)


def _first(value, default=None):
    """Widget values arrive as one-element lists on list-input nodes."""
    if isinstance(value, list):
        return value[0] if value else default
    return default if value is None else value


def _model_upscaler(upscale_model):
    """RGB uint8 -> larger RGB uint8 through ComfyUI's own upscale-model node (tiled, memory-managed)."""
    from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel

    def upscale(rgb):
        result = ImageUpscaleWithModel.execute(upscale_model, _to_image(rgb))
        images = result.result[0] if isinstance(result, io.NodeOutput) else result[0]
        return to_uint8(images[0])

    return upscale


def _report_text(batch) -> str:
    lines = [f"subject: {batch.subject.get('method')} ({batch.subject.get('engine')}), "
             f"{batch.subject.get('photos', 0)} photo(s), threshold {batch.subject.get('threshold')}"]
    for item in batch.items:
        sim = "" if item.similarity is None else f" sim {item.similarity:.3f}"
        verdict = "accepted" if item.accepted else f"rejected: {item.reason}"
        extra = f" ({item.detail})" if item.detail else ""
        lines.append(f"{item.name}: {verdict}{sim}{extra}")
    accepted = len(batch.accepted)
    lines.insert(0, f"{accepted} of {len(batch.items)} accepted")
    return "\n".join(lines)


class DatasetFilter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("DatasetFilter"),
            display_name=display_name("Dataset: filter photos"),
            category=CATEGORY,
            description="Finds the subject (from reference photos, or the identity seen in the most photos) and "
                        "accepts or rejects each photo with one reason: no_face, not_subject, multiple_faces, "
                        "low_resolution, face_too_small, blurry, duplicate. Takes several IMAGE inputs of "
                        "different sizes as a list.",
            is_input_list=True,
            inputs=[
                io.Image.Input("images", tooltip="The photos (batches; a list of batches of different sizes works)."),
                FaceEngineType.Input("face_engine", tooltip="Face engine: dlib (CPU, unrestricted) or insightface."),
                io.Image.Input("references", optional=True,
                               tooltip="Photos of the subject. Without them, the person seen in the most photos is "
                                       "the subject."),
                io.Float.Input("similarity_threshold", default=0.0, min=0.0, max=1.0, step=0.01,
                               tooltip="Cosine similarity to the subject that counts as the subject. 0 = the "
                                       "engine's default (dlib 0.92, insightface 0.40)."),
                io.Float.Input("competing_face_ratio", default=_DEFAULTS.competing_face_ratio, min=0.05, max=1.0,
                               step=0.05, **advanced(io.Float.Input),
                               tooltip="Another face at least this large relative to the subject's rejects the "
                                       "photo (multiple_faces); smaller faces are cropped away or blurred."),
                io.Int.Input("min_face_px", default=_DEFAULTS.min_face_px, min=8, max=4096, **advanced(io.Int.Input),
                             tooltip="Subject face height below this many pixels: face_too_small."),
                io.Float.Input("min_face_share", default=_DEFAULTS.min_face_share, min=0.0, max=1.0, step=0.01,
                               **advanced(io.Float.Input),
                               tooltip="Subject face size / image size below this: face_too_small."),
                io.Int.Input("min_source_side", default=_DEFAULTS.min_source_side, min=32, max=8192,
                             **advanced(io.Int.Input),
                             tooltip="Short side of the crop around the subject (source pixels) below this: "
                                     "low_resolution."),
                io.Float.Input("blur_threshold", default=_DEFAULTS.blur_threshold, min=0.0, max=10000.0, step=1.0,
                               **advanced(io.Float.Input),
                               tooltip="Variance of the Laplacian of the face at 128 px below this: blurry."),
                io.Int.Input("duplicate_distance", default=_DEFAULTS.duplicate_distance, min=0, max=63,
                             **advanced(io.Int.Input),
                             tooltip="Perceptual-hash distance (of 63 bits) at or under which photos are "
                                     "duplicates; identical pixels always are."),
            ],
            outputs=[
                DatasetType.Output(display_name="dataset", tooltip="The photos with their decisions (for Crop)."),
                io.Image.Output(display_name="accepted", is_output_list=True,
                                tooltip="The accepted photos, uncropped."),
                io.String.Output(display_name="report", tooltip="One line per photo: decision, reason, similarity."),
            ],
        )

    @classmethod
    def execute(cls, images, face_engine, similarity_threshold, competing_face_ratio, min_face_px, min_face_share,
                min_source_side, blur_threshold, duplicate_distance, references=None) -> io.NodeOutput:
        frames = _frames(images)
        threshold = float(_first(similarity_threshold))
        options = PrepareOptions(similarity_threshold=threshold if threshold > 0 else None,
                                 competing_face_ratio=float(_first(competing_face_ratio)),
                                 min_face_px=int(_first(min_face_px)), min_face_share=float(_first(min_face_share)),
                                 min_source_side=int(_first(min_source_side)),
                                 blur_threshold=float(_first(blur_threshold)),
                                 duplicate_distance=int(_first(duplicate_distance)))
        batch = filter_images(frames, _first(face_engine), references=_frames(references), options=options,
                              progress=_progress_bar(len(frames)))
        text = _report_text(batch)
        log.info("dataset filter: %s", text.splitlines()[0])
        accepted = [_to_image(item.image) for item in batch.accepted]
        return io.NodeOutput(batch, accepted, text, ui=ui.PreviewText(text))


class DatasetCrop(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("DatasetCrop"),
            display_name=display_name("Dataset: crop and resize"),
            category=CATEGORY,
            description="Crops each accepted photo around the subject (head and shoulders or more, as the photo "
                        "frames it), keeps other people out where possible and blurs the faces that remain, then "
                        "resizes so the short side is at least min_side (Lanczos, or an upscale model first).",
            inputs=[
                DatasetType.Input("dataset", tooltip="From Dataset: filter photos."),
                io.Float.Input("min_aspect", default=_DEFAULTS.min_aspect, min=0.25, max=1.0, step=0.05,
                               tooltip="Narrowest crop (width / height)."),
                io.Float.Input("max_aspect", default=_DEFAULTS.max_aspect, min=1.0, max=4.0, step=0.05,
                               tooltip="Widest crop (width / height)."),
                io.Int.Input("min_side", default=_DEFAULTS.min_side, min=256, max=4096, step=32,
                             tooltip="Short side of every output image at least this."),
                io.Int.Input("max_side", default=_DEFAULTS.max_side, min=256, max=8192, step=32,
                             tooltip="No output side larger than this (must hold min_side at the aspect limits)."),
                io.Boolean.Input("blur_other_faces", default=True,
                                 tooltip="Blur other people's faces left inside a crop."),
                io.UpscaleModel.Input("upscale_model", optional=True,
                                      tooltip="Enlarge small crops with this model before the final Lanczos resize."),
            ],
            outputs=[
                DatasetType.Output(display_name="dataset"),
                io.Image.Output(display_name="images", is_output_list=True, tooltip="The training images."),
            ],
        )

    @classmethod
    def execute(cls, dataset, min_aspect, max_aspect, min_side, max_side, blur_other_faces=True,
                upscale_model=None) -> io.NodeOutput:
        options = PrepareOptions(**{**dataset.options.to_dict(), "min_aspect": min_aspect, "max_aspect": max_aspect,
                                    "min_side": min_side, "max_side": max_side,
                                    "blur_other_faces": bool(blur_other_faces)})
        upscaler = _model_upscaler(upscale_model) if upscale_model is not None else None
        batch = crop_batch(dataset, options, upscaler, progress=_progress_bar(len(dataset.accepted)))
        blurred = sum(len(i.crop.blurred) for i in batch.accepted)
        text = "\n".join(f"{i.name}: {i.crop.shot}, {i.rendered.shape[1]}x{i.rendered.shape[0]} from crop "
                         f"{list(i.crop.box)}" + (f", {len(i.crop.blurred)} face(s) blurred" if i.crop.blurred else "")
                         for i in batch.accepted)
        if blurred:
            log.info("dataset crop: blurred %d other face(s)", blurred)
        return io.NodeOutput(batch, [_to_image(i.rendered) for i in batch.accepted], ui=ui.PreviewText(text))


class DatasetCaption(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("DatasetCaption"),
            display_name=display_name("Dataset: caption"),
            category=CATEGORY,
            description="Captions each cropped image '<trigger>, <shot type>[, text]' (close-up, portrait, medium "
                        "shot or full body, from the face-to-image ratio).",
            inputs=[
                DatasetType.Input("dataset", tooltip="From Dataset: crop and resize."),
                io.String.Input("trigger", default="ohwx man",
                                tooltip="The word(s) the LoRA learns the subject as; first in every caption."),
                io.String.Input("text", default="", multiline=True, optional=True,
                                tooltip="Appended to every caption, e.g. 'photo'."),
            ],
            outputs=[
                DatasetType.Output(display_name="dataset"),
                io.String.Output(display_name="captions", is_output_list=True),
            ],
        )

    @classmethod
    def execute(cls, dataset, trigger, text="") -> io.NodeOutput:
        batch = caption_batch(dataset, trigger, text or "")
        captions = [i.caption for i in batch.accepted]
        return io.NodeOutput(batch, captions, ui=ui.PreviewText("\n".join(captions)))


def output_folder(folder: str) -> str:
    """``folder`` inside ComfyUI's output directory (no absolute paths, no '..')."""
    import folder_paths

    base = os.path.abspath(folder_paths.get_output_directory())
    folder = (folder or "").strip()
    target = os.path.abspath(os.path.join(base, folder))
    if not folder or os.path.isabs(folder) or os.path.commonpath([base, target]) != base or target == base:
        raise ValueError(f"folder must be a relative sub-folder of the output directory, got {folder!r}")
    return target


class DatasetSave(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("DatasetSave"),
            display_name=display_name("Dataset: save for ai-toolkit"),
            category=CATEGORY,
            description="Writes output/<folder>/dataset/ (image + caption pairs only), ai-toolkit.yaml (a FLUX.1-dev "
                        "LoRA config pointing at it), report.json and report.html.",
            inputs=[
                DatasetType.Input("dataset", tooltip="From Dataset: caption."),
                io.String.Input("folder", default="lora_datasets/ohwx",
                                tooltip="Sub-folder of ComfyUI's output directory. A previous run's files there are "
                                        "replaced; anything else stops the save."),
                io.Int.Input("steps", default=2500, min=1, max=100000, tooltip="Training steps in the config."),
                io.Float.Input("learning_rate", default=1e-4, min=1e-7, max=1e-2, step=1e-5,
                               tooltip="Learning rate in the config."),
                io.Int.Input("batch_size", default=2, min=1, max=64, **advanced(io.Int.Input),
                             tooltip="Training batch size in the config."),
                io.Int.Input("rank", default=32, min=1, max=256, **advanced(io.Int.Input),
                             tooltip="LoRA rank (= alpha)."),
            ],
            outputs=[io.String.Output(display_name="folder", tooltip="Absolute path of the written folder.")],
            is_output_node=True,
            not_idempotent=True,
        )

    @classmethod
    def execute(cls, dataset, folder, steps=2500, learning_rate=1e-4, batch_size=2, rank=32) -> io.NodeOutput:
        target = output_folder(folder)
        training = TrainingConfig(steps=steps, lr=learning_rate, batch_size=batch_size, rank=rank, alpha=rank)
        saved = save_batch(dataset, target, training, progress=_progress_bar(len(dataset.accepted)))
        summary = saved.report["summary"]
        text = (f"saved {summary['accepted']} image/caption pairs to {saved.dataset_dir}\n"
                f"config: {saved.config_path}\nreport: {saved.html_path}")
        return io.NodeOutput(str(saved.output_dir), ui=ui.PreviewText(text))


NODE_LIST = [DatasetFilter, DatasetCrop, DatasetCaption, DatasetSave]
