"""What a caption says about a training image, measured from its faces: where the subject is in the
frame, who else is there, which way the head is turned, how tight the framing is.

Everything is "as seen in the image": *left* is the image's left, and a head "facing right" turns
toward the image's right (positive yaw, see :mod:`pulid_flux.face.headpose`). Positions are the
thirds of the frame width the face box's centre falls in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ..face.headpose import HeadPose, face_head_pose, head_angle_name

log = logging.getLogger(__name__)

POSITIONS = ("left", "center", "right")
#: caption phrase per position (what a VLM caption is checked against, see .vlm)
POSITION_PHRASES = {"left": "on the left", "center": "in the center", "right": "on the right"}
#: a head pitched more than this (degrees) up or down is said to look up / down
PITCH_WORDS_ABOVE = 15.0
_COUNT_WORDS = ("no", "one", "two", "three", "four", "five")


def frame_position(center_x: float, width: float) -> str:
    """'left', 'center' or 'right': the third of the frame width holding ``center_x``."""
    if width <= 0:
        raise ValueError(f"frame width must be positive, got {width}")
    share = center_x / width
    return POSITIONS[0] if share < 1 / 3 else POSITIONS[2] if share > 2 / 3 else POSITIONS[1]


def count_word(n: int) -> str:
    return _COUNT_WORDS[n] if 0 <= n < len(_COUNT_WORDS) else "several"


@dataclass
class SceneFacts:
    """The measured content of one training image (the geometric caption is built from it)."""

    position: str                                  # the subject's face: left / center / right
    others: list[str] = field(default_factory=list)    # each other person's position, left to right
    yaw: float | None = None                       # subject head pose, degrees (None: not measured)
    pitch: float | None = None
    framing: str | None = None                     # close-up / portrait / medium shot / full body

    @property
    def angle(self) -> str | None:
        return None if self.yaw is None else head_angle_name(self.yaw)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["angle"] = self.angle
        for key in ("yaw", "pitch"):
            if out[key] is not None:
                out[key] = round(out[key], 1)
        return out


def _center_x(box) -> float:
    return (float(box[0]) + float(box[2])) / 2.0


def _inside(box, frame) -> bool:
    cx, cy = _center_x(box), (float(box[1]) + float(box[3])) / 2.0
    return frame[0] <= cx < frame[2] and frame[1] <= cy < frame[3]


def describe_scene(face_box, other_boxes: Sequence = (), *, frame=None, image_size=None,
                   head_pose: HeadPose | None = None, framing: str | None = None) -> SceneFacts:
    """Facts about an image framed by ``frame`` ([x0, y0, x1, y1] in the same pixels as the boxes;
    default the whole image of ``image_size`` (width, height)). Other faces whose centre lies outside
    the frame are not in the picture and are not counted."""
    if frame is None:
        if image_size is None:
            raise ValueError("describe_scene needs the frame box or the image size")
        frame = (0.0, 0.0, float(image_size[0]), float(image_size[1]))
    x0, width = float(frame[0]), float(frame[2]) - float(frame[0])
    others = sorted((b for b in other_boxes if _inside(b, frame)), key=_center_x)
    return SceneFacts(position=frame_position(_center_x(face_box) - x0, width),
                      others=[frame_position(_center_x(b) - x0, width) for b in others],
                      yaw=None if head_pose is None else float(head_pose.yaw),
                      pitch=None if head_pose is None else float(head_pose.pitch), framing=framing)


def subject_head_pose(face, image_size) -> HeadPose | None:
    """The face's head pose, or None (logged) when its landmarks cannot be fitted."""
    try:
        return face_head_pose(face, image_size)
    except ValueError as exc:
        log.debug("no head pose for the face at %s: %s", [round(float(v)) for v in face.bbox], exc)
        return None


def describe_item(item) -> SceneFacts:
    """Facts about an accepted :class:`~.items.DatasetItem`'s training image (its crop of the photo)."""
    face = item.subject_face
    if face is None or item.crop is None:
        raise ValueError(f"{item.name}: no subject face and crop to describe")
    others = [f.bbox for i, f in enumerate(item.faces) if i != item.subject_index]
    return describe_scene(face.bbox, others, frame=item.crop.box,
                          head_pose=subject_head_pose(face, (item.width, item.height)), framing=item.crop.shot)


def others_phrase(positions: Sequence[str]) -> str:
    """'with one other person on the right', 'with two other people, on the left and in the center'."""
    if not positions:
        return ""
    places = [POSITION_PHRASES[p] for p in positions]
    unique = list(dict.fromkeys(places))
    if len(positions) == 1:
        return f"with one other person {places[0]}"
    where = unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " and " + unique[-1]
    return f"with {count_word(len(positions))} other people, {where}"


def angle_phrase(yaw: float | None, pitch: float | None = None) -> str:
    """'frontal view', 'three-quarter view facing right', 'profile facing left', plus looking up/down."""
    if yaw is None:
        return ""
    name = head_angle_name(yaw)
    if name == "frontal":
        text = "frontal view"
    else:
        side = "right" if yaw > 0 else "left"
        text = f"{name} view facing {side}" if name == "three-quarter" else f"profile facing {side}"
    if pitch is not None and abs(pitch) > PITCH_WORDS_ABOVE:
        text += ", looking up" if pitch > 0 else ", looking down"
    return text


def geometric_caption(trigger: str, facts: SceneFacts, text: str = "") -> str:
    """``trigger, position, other people, head angle, framing, text`` (empty parts left out)."""
    from .caption import check_trigger, clean_text

    parts = [check_trigger(trigger), POSITION_PHRASES[facts.position], others_phrase(facts.others),
             angle_phrase(facts.yaw, facts.pitch), facts.framing or "", clean_text(text)]
    return ", ".join(p for p in parts if p)
