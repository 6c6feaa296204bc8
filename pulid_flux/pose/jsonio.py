"""Reading and writing pose keypoint JSON in comfyui_controlnet_aux's format.

controlnet_aux's "Save Pose Keypoints" node writes ``json.dump(pose_kps, f)``: the POSE_KEYPOINT
list, default separators, no indentation. ``save_pose_json`` writes the same way and the loaders keep
the parsed value as it is (unknown keys, int-versus-float numbers, a top-level dict or list), so a
file written by controlnet_aux comes back from load -> save byte for byte.
"""

import json
from pathlib import Path

from .keypoints import PoseFormatError, as_frames


def pose_from_json_string(text: str, source: str = "pose JSON"):
    """Parse and validate a POSE_KEYPOINT JSON text; returns the list or dict exactly as parsed."""
    try:
        pose = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PoseFormatError(f"{source}: not valid JSON ({exc})") from exc
    try:
        as_frames(pose)
    except PoseFormatError as exc:
        raise PoseFormatError(f"{source}: {exc}") from exc
    return pose


def load_pose_json(path):
    """Read a pose keypoint JSON file (a list of frames, or one frame dict) and validate it."""
    path = Path(path)
    if not path.is_file():
        raise PoseFormatError(f"{path}: pose JSON file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PoseFormatError(f"{path}: could not be read as UTF-8 text ({exc})") from exc
    return pose_from_json_string(text, source=str(path))


def pose_to_json_string(pose) -> str:
    as_frames(pose)
    return json.dumps(pose)


def save_pose_json(pose, path) -> Path:
    """Write ``pose`` (list or dict, kept as given) the way controlnet_aux writes it."""
    text = pose_to_json_string(pose)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
