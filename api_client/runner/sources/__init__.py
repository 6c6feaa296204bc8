"""Plan sources: where a run's jobs come from.

A source turns its own input into a :class:`~..plan.RunPlan`; everything after that (queueing,
resume, the report) is the same for every source. A source is one :class:`PlanSource` record: the
sub-command that runs it, the arguments it adds, and its ``build`` function. The command line lists
the sources it offers (``commands.SOURCES``); see ``docs/architecture.md`` for adding one.

Today's source is the ablation spec (:mod:`.ablation`: ``run`` and ``ablate``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import RunnerError
from ..files import write_atomic
from ..plan import REFERENCE_DIR, Reference, RunPlan

log = logging.getLogger("api_client.runner")

TINY_REFERENCE_CELL = (9, 8)


@dataclass(frozen=True)
class RunRequest:
    """The command line's options every source gets (the source's own are in its ``args``)."""

    out: Path
    references: tuple[Path, ...] = ()      # --reference, in order
    tiny: bool = False
    tiny_models: Path | None = None        # where --tiny builds its models
    launch: Path | None = None             # --launch COMFYUI_PATH


@dataclass(frozen=True)
class PlanSource:
    """One way to build a run plan, offered as the sub-command ``command``."""

    command: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]     # the source's own arguments
    build: Callable[[argparse.Namespace, RunRequest], RunPlan]
    report: bool = False        # score the gallery and write OUT/report.md after the run
    #: which report writer: "gallery" (identity per config, ``reporting.make_report``) or the name of
    #: a source's own (``commands.REPORT_WRITERS``); the source then adds its scoring options itself
    report_kind: str = "gallery"
    several_references: bool = False    # --reference IMG [IMG ...] (the ablation's takes one per flag)


def resolve_reference(request: RunRequest, default: Sequence[Path] = (), region=None) -> Reference:
    """The reference photo(s): ``--reference``, else the source's ``default``, else (``--tiny``) a
    synthetic face the tiny detector sees, painted once into ``OUT/reference``; else none.

    The first photo's face region is ``region`` (a FaceRegion the source gives for its ``default``
    photo) or the ``.face.json`` sidecar beside it (docs/face_region.md)."""
    files = list(request.references) or list(default)
    if not files and request.tiny:
        path = request.out / REFERENCE_DIR / "tiny_reference.png"
        # Painting it imports pulid_flux.tiny (and torch): reuse the copy of an earlier run.
        data = path.read_bytes() if path.is_file() else None
        if not data:
            data = tiny_reference_png()
            write_atomic(path, data)
        return Reference(files=(path.resolve(),), data=data, upload_name=upload_name(data, ".png"), tiny=True)
    if not files:
        return Reference()
    for path in files:
        if not Path(path).is_file():
            raise RunnerError(f"reference image {path} not found")
    data = Path(files[0]).read_bytes()
    if request.references and region is not None:
        log.warning("the spec's reference_region is for its own reference photo; with --reference it is not used "
                    "(put a %s beside your photo instead)", Path(files[0]).stem + ".face.json")
        region = None
    region = face_region(Path(files[0]), region)
    return Reference(files=tuple(Path(p).resolve() for p in files), data=data,
                     upload_name=upload_name(data, Path(files[0]).suffix or ".png"),
                     region=region.to_dict() if region is not None else None,
                     region_value=format_face_region(region) if region is not None else None)


def face_region(photo: Path, region=None):
    """``region`` (else ``photo``'s sidecar) tied to the photo by its content hash: Encode identity drops
    a region whose hash is not its image's. None when there is none; RunnerError when it is unusable."""
    from pulid_flux.errors import PulidError
    from pulid_flux.face.region import FaceRegion, read_sidecar
    from pulid_flux.images import content_hash, load_rgb

    try:
        region = region or read_sidecar(photo)
        if region is None:
            return None
        image = load_rgb(photo)               # decoded as ComfyUI's Load Image does: the same hash there
        region.check_image(image.shape[1], image.shape[0])
    except PulidError as exc:                 # a bad sidecar or a box off the photo: said before any job runs
        raise RunnerError(str(exc)) from None
    log.info("reference face region %s from %s", list(region.box), region.source)
    return FaceRegion(region.box, region.mask, content_hash(image), region.source)


def format_face_region(region) -> str:
    from pulid_flux.face.region import format_region_list

    return format_region_list([region])


def tiny_reference_png() -> bytes:
    """A synthetic reference the tiny insightface pack sees one face in."""
    from PIL import Image

    from pulid_flux.tiny.insightface_pack import paint_faces

    buffer = io.BytesIO()
    Image.fromarray(paint_faces(640, 640, [TINY_REFERENCE_CELL])).save(buffer, format="PNG")
    return buffer.getvalue()


def upload_name(data: bytes, suffix: str) -> str:
    """A content-addressed upload name, so every server (and every run) uses the same value."""
    return f"ref_{hashlib.sha256(data).hexdigest()[:16]}{suffix.lower()}"


def parse_csv_ints(text: str | None, what: str) -> tuple[int, ...] | None:
    """``"1,2,3"`` -> (1, 2, 3); None stays None."""
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise RunnerError(f"{what}: expected comma-separated integers, got {text!r}") from None
    if not values:
        raise RunnerError(f"{what}: expected at least one integer")
    return values
