"""Face regions in the canvas (web/face_picker.js): what Encode identity shows, and the crop preview.

* Each run of Encode identity gives the editor, per image: a thumbnail and a source copy (long side
  at most ``SOURCE_MAX_SIDE``) in ComfyUI's temp folder, the content hash, the detected boxes and the
  region used. When no image has a face, the node sends the same data over the websocket (event
  ``EVENT``) before it raises, so the user can draw the region on the photo the error is about.
* ``GET /pulid_studio/face_region/image?filename=&subfolder=&type=input`` answers ``{"image_size",
  "image_hash"}`` of an input photo as Load Image reads it (EXIF orientation applied), so a region can
  be drawn, with the right hash, on the photo a Load Image node feeds in before the node ever ran.
* ``POST /pulid_studio/face_region/preview`` with ``{"source": {"filename", "subfolder", "type":
  "temp"|"input"}, "image_size": [w, h], "region": {"box", "mask"}, "engine": <token>}`` answers
  ``{"mode", "message", "visible_share", "crop": <PNG data URL>}``: the aligned crop Encode identity
  will encode for that region (:func:`pulid_flux.face.region_locate.region_crop`), before queueing.
  The token names the face engine of the node's last run (held weakly: once ComfyUI drops that
  engine, or before a first run, the preview is box-only and says so); 400 with ``{"error"}`` on bad
  input.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import secrets
import weakref
from pathlib import Path

import numpy as np

from ..pulid_flux.errors import FaceRegionError
from ..pulid_flux.face.region import region_from_dict
from ..pulid_flux.face.region_locate import region_crop
from ..pulid_flux.images import ImageReadError, load_rgb
from .previews import in_executor, save_temp_images, thumbnail

log = logging.getLogger(__name__)

ROUTE = "/pulid_studio/face_region/preview"
IMAGE_ROUTE = "/pulid_studio/face_region/image"
EVENT = "pulid_studio.faces"
PAYLOAD_KEY = "pulid_studio_faces"
SOURCE_MAX_SIDE = 2048
PREVIEW_SIDE = 256

# Engines of recent runs, by token, for the preview route; weak, so ComfyUI's cache decides their life.
_ENGINES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def engine_token(engine) -> str:
    token = getattr(engine, "_pulid_region_token", None)
    if token is None:
        token = engine._pulid_region_token = secrets.token_hex(8)
    _ENGINES[token] = engine
    return token


def picker_data(node_cls, frames, statuses, face_choice, face_index, engine) -> dict:
    """What web/face_picker.js draws: per image its status (boxes in the order face_index counts in,
    hash, region), and, inside the executor, a thumbnail and a source copy in the temp folder."""
    images = [status.as_dict() for status in statuses]
    data = {"face_order": face_choice, "face_index": int(face_index), "images": images}
    if in_executor(node_cls):
        data["engine"] = engine_token(engine)
        for entry, small, source in zip(images, save_temp_images([thumbnail(f) for f in frames]),
                                        save_temp_images([thumbnail(f, SOURCE_MAX_SIDE) for f in frames])):
            entry["preview"], entry["source"] = small, source
    return data


def send_to_canvas(node_cls, data: dict) -> None:
    """The picker data over the websocket (the node is about to fail, so no UI output will carry it)."""
    hidden = getattr(node_cls, "hidden", None)
    node = getattr(hidden, "unique_id", None) if hidden is not None else None
    if node is None:
        return
    from server import PromptServer

    server = PromptServer.instance
    server.send_sync(EVENT, {"node": str(node), PAYLOAD_KEY: data}, server.client_id)


# -- the preview route ----------------------------------------------------------------------------------


def _image_file(ref) -> Path:
    """The file of a ``{filename, subfolder, type}`` reference in ComfyUI's temp or input folder."""
    import folder_paths

    kind = ref.get("type") if isinstance(ref, dict) else None
    if kind not in ("temp", "input") or not isinstance(ref.get("filename"), str):
        raise FaceRegionError("'source' must be an image reference {filename, subfolder, type: temp or input}")
    root = Path(folder_paths.get_directory_by_type(kind)).resolve()
    path = (root / str(ref.get("subfolder") or "") / ref["filename"]).resolve()
    if root not in path.parents or not path.is_file():
        raise FaceRegionError(f"image {ref['filename']!r} is not in ComfyUI's {kind} folder (run the node again)")
    return path


def image_info(ref: dict) -> dict:
    """Size and content hash of an input/temp photo as Load Image reads it."""
    from ..pulid_flux.images import content_hash

    image = load_rgb(_image_file(ref))
    return {"image_size": [image.shape[1], image.shape[0]], "image_hash": content_hash(image)}


def _png_data_url(image: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def preview(body: dict) -> dict:
    """The route's answer for a request body (FaceRegionError on bad input)."""
    if not isinstance(body, dict):
        raise FaceRegionError("the request body must be a JSON object")
    source = load_rgb(_image_file(body.get("source")))
    size = body.get("image_size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in size)):
        raise FaceRegionError("'image_size' must be [width, height] of the photo the box is drawn on")
    region = region_from_dict(body.get("region"), "face_region").scaled(source.shape[1] / float(size[0]))
    token = body.get("engine")
    engine = _ENGINES.get(token) if isinstance(token, str) else None
    crop, located, share = region_crop(source, region, engine)
    message = located.describe()
    if engine is None:
        message = "no face engine at hand (run the node once): " + message
    return {"mode": located.mode, "message": message, "visible_share": share, "engine": engine is not None,
            "crop": _png_data_url(thumbnail(crop, PREVIEW_SIDE))}


def register_routes() -> None:
    """Add the preview route to ComfyUI's server (nothing when there is no server, e.g. in tests)."""
    try:
        from server import PromptServer
    except ImportError:
        return
    server = getattr(PromptServer, "instance", None)
    if server is None or getattr(server, "_pulid_region_routes", False):
        return
    from aiohttp import web

    async def answer(function, argument):
        import asyncio

        try:
            # Reading photos and detecting faces take a moment: off the event loop.
            result = await asyncio.get_running_loop().run_in_executor(None, function, argument)
        except (FaceRegionError, ImageReadError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result)

    @server.routes.post(ROUTE)
    async def face_region_preview(request):
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the request body is not JSON"}, status=400)
        return await answer(preview, body)

    @server.routes.get(IMAGE_ROUTE)
    async def face_region_image(request):
        # The canvas asks in the background for whatever Load Image shows: a missing file is an
        # answer ({"error"}), not a failed request the browser console would report.
        response = await answer(image_info, dict(request.rel_url.query))
        return web.json_response(json.loads(response.body), status=200)

    server._pulid_region_routes = True


register_routes()
