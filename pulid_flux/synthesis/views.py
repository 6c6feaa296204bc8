"""The view plan: which views of the subject a synthesized training set holds.

A view is a head pose (yaw, pitch, roll), a distance (close-up, portrait, medium, full body) and the
words of the prompt (expression, lighting, background). The pose ControlNet gets the head pose and
the distance as an OpenPose figure (:func:`pulid_flux.pose.head_view.head_view_pose`); the prompt
repeats them in words and adds the rest.

The default plan (``default_view_plan``) covers the head as a volume, "so the LoRA learns the full
head, not just the frontal face": yaw from profile to profile in 30-degree steps at portrait
distance, looking up and down, every distance at frontal and three-quarter angles, and expressions
at close range; lighting and background rotate through their lists so no two neighbouring views
share both. A plan file (YAML) replaces it::

    defaults: {expression: neutral expression, lighting: soft daylight, background: plain grey background}
    views:
      - {name: front, yaw: 0}
      - {name: right_3q_close, yaw: 45, distance: close-up, expression: smiling}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..errors import PulidError
from ..face.headpose import head_angle_name

#: distance word -> (head-view framing, the caption's framing word)
DISTANCES = {
    "close-up": ("headshot", "close-up"),
    "portrait": ("portrait", "portrait"),
    "medium": ("medium", "medium shot"),
    "full body": ("full_body", "full body"),
}
LIGHTING = ("soft diffused daylight", "warm golden hour light", "studio key light with soft fill",
            "overcast outdoor light", "window light from the side")
BACKGROUNDS = ("plain light grey background", "blurred city street", "green park", "modern office interior",
               "beige studio backdrop", "library with bookshelves")
NEUTRAL = "neutral expression"
#: yaw tolerance (degrees) when checking a kept image's head pose against its view, per view band
YAW_TOLERANCE = {"frontal": 15.0, "three-quarter": 20.0, "profile": 25.0}
PITCH_TOLERANCE = 20.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


class ViewPlanError(PulidError, ValueError):
    """A view plan (file or value) that cannot be used; names the view and key."""


@dataclass(frozen=True)
class View:
    name: str
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    distance: str = "portrait"
    expression: str = NEUTRAL
    lighting: str = LIGHTING[0]
    background: str = BACKGROUNDS[0]

    @property
    def framing(self) -> str:
        """The head-view bank framing (headshot / portrait / medium / full_body)."""
        return DISTANCES[self.distance][0]

    @property
    def shot(self) -> str:
        """The caption's framing word (close-up / portrait / medium shot / full body)."""
        return DISTANCES[self.distance][1]

    @property
    def angle(self) -> str:
        return head_angle_name(self.yaw)

    @property
    def yaw_tolerance(self) -> float:
        return YAW_TOLERANCE[self.angle]

    def head_words(self) -> str:
        """The head pose in prompt words ('head turned to the right in three-quarter view', ...)."""
        side = "right" if self.yaw > 0 else "left"
        angle = self.angle
        words = ("facing the camera" if angle == "frontal" else
                 f"head turned to the {side} in three-quarter view" if angle == "three-quarter" else
                 f"profile view facing {side}")
        if self.pitch > 10:
            words += ", looking up"
        elif self.pitch < -10:
            words += ", looking down"
        return words

    def prompt(self, subject: str) -> str:
        """The positive prompt for this view of ``subject`` (e.g. 'a man', or a trigger word)."""
        parts = [f"photo of {subject}", self.shot, self.head_words(), self.expression, self.lighting,
                 self.background, "sharp focus"]
        return ", ".join(p for p in parts if p)

    def to_dict(self) -> dict:
        return asdict(self)


def view_name(yaw: float, pitch: float, distance: str, expression: str = NEUTRAL) -> str:
    name = f"y{int(round(yaw)):+d}_p{int(round(pitch)):+d}_{distance.replace(' ', '').replace('-', '')}"
    if expression != NEUTRAL:
        name += "_" + re.sub(r"[^a-z0-9]+", "", expression.lower().split()[0])
    return name


def _rotate_styles(views: Sequence[View]) -> list[View]:
    return [replace(v, lighting=LIGHTING[i % len(LIGHTING)], background=BACKGROUNDS[(i * 2 + i // 3) % len(BACKGROUNDS)])
            for i, v in enumerate(views)]


def default_view_plan() -> list[View]:
    """The shipped plan (see the module docstring): 24 views."""
    specs = [(yaw, 0.0, "portrait", NEUTRAL) for yaw in (0, 30, -30, 60, -60, 90, -90)]
    specs += [(0, 20, "portrait", NEUTRAL), (0, -20, "portrait", NEUTRAL),
              (30, 15, "portrait", NEUTRAL), (-30, -15, "portrait", NEUTRAL)]
    specs += [(yaw, 0.0, distance, NEUTRAL) for distance in ("close-up", "medium", "full body") for yaw in (0, 45, -45)]
    specs += [(0, 0.0, "close-up", "smiling"), (30, 0.0, "close-up", "laughing"), (-30, 0.0, "close-up", "serious look"),
              (0, 0.0, "portrait", "slight smile")]
    views = [View(name=view_name(y, p, d, e), yaw=float(y), pitch=float(p), distance=d, expression=e)
             for y, p, d, e in specs]
    return _rotate_styles(views)


def tiny_view_plan() -> list[View]:
    """Three views (frontal, three-quarter, profile) for smoke tests."""
    return [v for v in default_view_plan() if v.name in ("y+0_p+0_portrait", "y+30_p+0_portrait", "y-90_p+0_portrait")]


_FIELDS = {f.name: f for f in fields(View)}


def _view_from(entry: Mapping, defaults: Mapping, where: str) -> View:
    if not isinstance(entry, Mapping):
        raise ViewPlanError(f"{where}: expected a mapping of view keys, got {type(entry).__name__}")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise ViewPlanError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    values = {**defaults, **entry}
    for key in ("yaw", "pitch", "roll"):
        value = values.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ViewPlanError(f"{where}: {key} must be a number of degrees, got {value!r}")
        values[key] = float(value)
    if not -180 <= values["yaw"] <= 180 or not -90 <= values["pitch"] <= 90 or not -90 <= values["roll"] <= 90:
        raise ViewPlanError(f"{where}: need -180 <= yaw <= 180, -90 <= pitch, roll <= 90; got "
                            f"{values['yaw']}, {values['pitch']}, {values['roll']}")
    distance = values.get("distance", "portrait")
    if distance not in DISTANCES:
        raise ViewPlanError(f"{where}: distance must be one of {', '.join(DISTANCES)}, got {distance!r}")
    for key in ("expression", "lighting", "background"):
        if key in values and not isinstance(values[key], str):
            raise ViewPlanError(f"{where}: {key} must be text, got {values[key]!r}")
    name = values.get("name") or view_name(values["yaw"], values["pitch"], distance,
                                           values.get("expression", NEUTRAL))
    if not isinstance(name, str) or not _NAME.match(name):
        raise ViewPlanError(f"{where}: name {name!r} must be letters, digits, _ . + - (it names files)")
    return View(**{**values, "name": name})


def parse_view_plan(data, where: str = "view plan") -> list[View]:
    if not isinstance(data, Mapping) or "views" not in data:
        raise ViewPlanError(f"{where}: expected a mapping with a 'views' list")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, Mapping) or set(defaults) - set(_FIELDS) - {"name"}:
        raise ViewPlanError(f"{where}: 'defaults' must map view keys ({', '.join(_FIELDS)}) to values")
    entries = data["views"]
    if not isinstance(entries, list) or not entries:
        raise ViewPlanError(f"{where}: 'views' must be a non-empty list")
    views = [_view_from(entry, defaults, f"{where}: views[{i}]") for i, entry in enumerate(entries)]
    check_unique(views, where)
    return views


def check_unique(views: Iterable[View], where: str = "view plan") -> None:
    seen = set()
    for view in views:
        if view.name in seen:
            raise ViewPlanError(f"{where}: two views are named {view.name!r}")
        seen.add(view.name)


def load_view_plan(path) -> list[View]:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ViewPlanError(f"{path}: cannot read the view plan ({exc})") from None
    except yaml.YAMLError as exc:
        raise ViewPlanError(f"{path}: not valid YAML ({exc})") from None
    return parse_view_plan(data, str(path))


#: views the training set does not hold, as sample prompts (ai-toolkit's samples during training, and
#: the prompts of the checkpoint sweep's spec): generalization, not memorization, shows on them
SAMPLE_VIEWS = (
    View("sample-cafe", yaw=-30.0, distance="medium", expression="relaxed smile", lighting="warm window light",
         background="cozy cafe interior"),
    View("sample-street", yaw=20.0, distance="full body", expression="neutral expression",
         lighting="evening city lights", background="busy street at night"),
    View("sample-closeup", yaw=0.0, distance="close-up", expression="slight smile", lighting="soft overcast light",
         background="misty forest"),
    View("sample-profile", yaw=75.0, distance="portrait", expression="calm expression", lighting="golden hour rim light",
         background="beach at sunset"),
)


def canonical_view() -> View:
    """The canonical portrait: frontal, neutral, bare face, plain background, even light."""
    return View("canonical", yaw=0.0, distance="close-up",
                expression="neutral expression, bare face, no glasses, no hat, no jewelry",
                lighting="even soft studio light", background="plain white background")
