"""``DatasetItem``: one input photo and everything the preparation learns and decides about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..face import Face
from ..face.region import FaceRegion

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass
class CropPlan:
    """Where the training image comes from and what was done about other people's faces.

    Boxes are ``[x0, y0, x1, y1]`` in source-image pixels.
    """

    box: tuple[int, int, int, int]
    output_size: tuple[int, int]                 # (width, height) of the written image
    shot: str
    face_ratio: float                            # subject face height / crop height
    blurred: list[list[float]] = field(default_factory=list)   # other faces left inside, blurred
    avoided: int = 0                             # other faces the crop was moved or shrunk to leave out

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


@dataclass
class DatasetItem:
    """One input photo. Filled stage by stage: analysis, subject match, decision, crop, caption, export."""

    name: str                                    # file name (folder runs) or generated name (node runs)
    path: Path | None = None
    image: np.ndarray | None = None              # RGB uint8; folder runs drop it after analysis
    width: int = 0
    height: int = 0
    digest: str | None = None                    # sha256 of the file bytes, or of the pixels
    faces: list[Face] = field(default_factory=list)
    region: FaceRegion | None = None             # its .face.json sidecar: then faces[0] is the region's face
    sharpness: list[float] = field(default_factory=list)      # per face
    phash: int | None = None
    thumbnail: np.ndarray | None = None          # small RGB copy for the contact sheet
    similarities: list[float] = field(default_factory=list)   # per face, to the subject centroid
    subject_index: int | None = None             # index in ``faces`` of the subject's face
    status: str | None = None
    reason: str | None = None
    detail: str = ""
    duplicate_of: str | None = None
    crop: CropPlan | None = None
    rendered: np.ndarray | None = None           # the training image, in-memory runs (nodes)
    caption: str | None = None
    scene: dict | None = None                    # the measured caption facts (scene.SceneFacts.to_dict())
    caption_source: str | None = None            # "geometric" or "vlm"
    caption_warning: str | None = None           # why a VLM caption was replaced
    output: str | None = None                    # image path relative to the output folder
    caption_file: str | None = None

    @property
    def readable(self) -> bool:
        return self.width > 0

    @property
    def subject_face(self) -> Face | None:
        return None if self.subject_index is None else self.faces[self.subject_index]

    @property
    def similarity(self) -> float | None:
        """The subject face's similarity, else the best of the photo's faces (None without faces)."""
        if not self.similarities:
            return None
        if self.subject_index is not None:
            return self.similarities[self.subject_index]
        return max(self.similarities)

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    def accept(self) -> None:
        self.status, self.reason, self.detail = ACCEPTED, None, ""

    def reject(self, reason: str, detail: str = "", duplicate_of: str | None = None) -> None:
        self.status, self.reason, self.detail, self.duplicate_of = REJECTED, reason, detail, duplicate_of
