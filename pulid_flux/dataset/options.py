"""Every threshold of dataset preparation, with its default and the reason for it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

#: One reason code per rejected photo (the report's ``reason``), in the order they are checked;
#: byte-identical copies are "duplicate" before anything else, near-identical photos only at the end.
REASONS = ("unreadable", "duplicate", "no_face", "not_subject", "multiple_faces", "low_resolution",
           "face_too_small", "blurry", "bad_region")

#: Caption shot types, tightest first.
SHOT_TYPES = ("close-up", "portrait", "medium shot", "full body")

#: What to do with photos that show other people besides the subject (``PrepareOptions.others``):
#: ``crop`` frames the subject, leaving the others out where the geometry allows and blurring the
#: faces that remain (a photo where another face is as prominent as the subject's is rejected);
#: ``keep`` keeps the whole photo and lets the caption say where the subject is and who else is
#: there; ``reject`` rejects every photo with another face in it.
OTHERS_CHOICES = ("crop", "keep", "reject")

# Cosine similarity above which two faces are the same person, per engine family. dlib's descriptors
# are compared with a Euclidean distance of 0.6 in face_recognition; their norm is about 1.4, which
# puts the same boundary at a cosine of about 0.91 (on the shared photos: same person >= 0.95,
# different people <= 0.90). ArcFace (insightface) uses ~0.4 for "same person".
SIMILARITY_THRESHOLDS = {"dlib": 0.92, "insightface": 0.40}


def default_similarity_threshold(engine) -> float:
    family = getattr(engine, "family", "") or str(getattr(engine, "name", "")).split(":")[0]
    if family in SIMILARITY_THRESHOLDS:
        return SIMILARITY_THRESHOLDS[family]
    raise ValueError(f"no default similarity threshold for face engine {family or engine!r}; "
                     f"pass similarity_threshold (known engines: {', '.join(SIMILARITY_THRESHOLDS)})")


@dataclass
class PrepareOptions:
    """Thresholds and output settings; every field has a default that suits FLUX LoRA training."""

    # -- identity ---------------------------------------------------------------------------------
    #: cosine similarity to the subject centroid that counts as the subject (None: engine default)
    similarity_threshold: float | None = None
    # -- rejection rules --------------------------------------------------------------------------
    #: another face whose size (sqrt of box area) reaches this share of the subject's competes
    #: with it: the photo is rejected as multiple_faces; smaller faces are cropped away or blurred
    competing_face_ratio: float = 0.6
    #: photos with other people: "crop", "keep" or "reject" (see OTHERS_CHOICES)
    others: str = "crop"
    #: subject face box height below this many source pixels -> face_too_small
    min_face_px: int = 64
    #: subject face size (sqrt of box area / image area) below this share -> face_too_small
    min_face_share: float = 0.05
    #: share of the subject's face box that must lie inside the photo; a face cut by the frame is
    #: reported as face_too_small (the visible face is too small a part of it)
    min_face_inside: float = 0.9
    #: the subject crop's short side, in source pixels, below this -> low_resolution (it would need
    #: more than min_side / min_source_side times upscaling)
    min_source_side: int = 384
    #: variance of the Laplacian of the face resized to 128x128; below -> blurry
    blur_threshold: float = 30.0
    #: perceptual-hash Hamming distance (of 63 bits) at or under which two photos are duplicates
    duplicate_distance: int = 10
    # -- crop -------------------------------------------------------------------------------------
    #: width / height limits of every crop
    min_aspect: float = 0.5
    max_aspect: float = 2.0
    #: a crop spans at most this many subject face heights (a full body is about 9)
    max_extent_faces: float = 12.0
    #: blur the faces of other people that stay inside the crop
    blur_other_faces: bool = True
    #: face-height / crop-height ratio at or above which each shot type starts (close-up, portrait,
    #: medium shot; smaller is full body)
    shot_ratios: tuple[float, float, float] = (0.45, 0.28, 0.16)
    # -- output -----------------------------------------------------------------------------------
    #: short side of every output image at least this (upscaled with Lanczos when needed)
    min_side: int = 1024
    #: no output side larger than this
    max_side: int = 2048
    #: output sides are multiples of this (FLUX buckets snap to 32 px, so ai-toolkit then crops nothing)
    multiple: int = 32
    #: "jpg" (quality 95) or "png"
    image_format: str = "jpg"
    #: user text appended to every caption after the shot type
    caption_text: str = ""
    # -- speed ------------------------------------------------------------------------------------
    #: faces are detected on a copy whose long side is at most this (boxes are mapped back)
    detect_max_side: int = 1024

    def __post_init__(self):
        self.shot_ratios = tuple(float(v) for v in self.shot_ratios)
        self.validate()

    def validate(self) -> None:
        problems = []
        if self.similarity_threshold is not None and not -1.0 <= self.similarity_threshold <= 1.0:
            problems.append(f"similarity_threshold must be a cosine in [-1, 1], got {self.similarity_threshold}")
        if self.others not in OTHERS_CHOICES:
            problems.append(f"others must be one of {', '.join(OTHERS_CHOICES)}, got {self.others!r}")
        if not 0.0 < self.competing_face_ratio <= 1.0:
            problems.append(f"competing_face_ratio must be in (0, 1], got {self.competing_face_ratio}")
        if not 0.0 < self.min_face_inside <= 1.0:
            problems.append(f"min_face_inside must be in (0, 1], got {self.min_face_inside}")
        if not 0.0 < self.min_aspect <= 1.0 <= self.max_aspect:
            problems.append(f"need 0 < min_aspect <= 1 <= max_aspect, got {self.min_aspect}, {self.max_aspect}")
        if self.multiple < 1 or self.min_side < self.multiple:
            problems.append(f"min_side ({self.min_side}) must be at least multiple ({self.multiple}) >= 1")
        if self.max_side < self.min_side:
            problems.append(f"max_side ({self.max_side}) must be >= min_side ({self.min_side})")
        # A crop at the aspect limit with the minimum short side must still fit under max_side.
        longest = self.min_side * max(self.max_aspect, 1.0 / self.min_aspect)
        if self.max_side < longest - 1e-6:
            problems.append(f"max_side {self.max_side} cannot hold a {self.min_side}-px short side at aspect "
                            f"{max(self.max_aspect, 1 / self.min_aspect):g}; raise max_side to {int(longest)} "
                            "or narrow the aspect range")
        a, b, c = self.shot_ratios if len(self.shot_ratios) == 3 else (0, 0, 0)
        if len(self.shot_ratios) != 3 or not a > b > c > 0:
            problems.append(f"shot_ratios must be 3 decreasing positive ratios, got {self.shot_ratios}")
        if self.image_format not in ("jpg", "png"):
            problems.append(f"image_format must be 'jpg' or 'png', got {self.image_format!r}")
        if self.detect_max_side < 256:
            problems.append(f"detect_max_side must be >= 256, got {self.detect_max_side}")
        if self.duplicate_distance < 0:
            problems.append(f"duplicate_distance must be >= 0, got {self.duplicate_distance}")
        if problems:
            raise ValueError("invalid dataset options: " + "; ".join(problems))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["shot_ratios"] = list(self.shot_ratios)
        return out

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]
