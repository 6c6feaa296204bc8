"""Scoring a run's gallery into ``OUT/report.md``: which engines, whether the report is current, and
the scoring call itself (:mod:`.report` writes the files)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from ..errors import RunnerError
from ..plan import GALLERY, RunInfo
from .report import REPORT, report_fingerprint, report_is_current, score, write_report

log = logging.getLogger("api_client.runner")


def scoring_engines(engines: Sequence[str], models_dir: str | Path | None, info: RunInfo) -> tuple[list[str], Path | None]:
    """The engines (``--engine``, default insightface when a models folder is known, else dlib) and the
    models folder (``--models-dir``, else the tiny models, else the launched ComfyUI's)."""
    if models_dir:
        models_dir = Path(models_dir)
    elif info.tiny and info.tiny_models:
        models_dir = Path(info.tiny_models)
    elif info.launch:
        models_dir = Path(info.launch) / "models"
    else:
        models_dir = None
    engines = list(engines) or (["insightface"] if models_dir else ["dlib"])
    if info.tiny and models_dir is not None and not (models_dir / "insightface").is_dir():
        # A --tiny run on remote servers built no models here: the scorer still needs the synthetic pack.
        from pulid_flux.tiny import build_tiny_models

        build_tiny_models(models_dir, include=["insightface"])
    return engines, models_dir


def make_report(out: Path, *, info: RunInfo, engines: list[str], models_dir: Path | None, records: list[dict],
                reference: Sequence[Path], force: bool, total_jobs: int | None,
                selected_jobs: int | None = None) -> Path | None:
    """Score ``OUT/gallery`` and write ``OUT/report.md`` unless it is current (same images, same settings)."""
    if not reference:
        raise RunnerError("scoring needs reference photo(s): pass --reference IMAGE")
    fingerprint = report_fingerprint({r["job_id"]: r for r in records},
                                     {"engines": engines, "models_dir": str(models_dir), "reference": list(map(str, reference))})
    if not force and report_is_current(out, fingerprint):
        log.info("report %s is up to date (same images, same scoring settings)", out / REPORT)
        return out / REPORT
    configs = [c for c in info.configs if (out / GALLERY / c).is_dir()]
    log.info("scoring %d image(s) in %d config(s) with %s", len(records), len(configs), ", ".join(engines))
    regions = {}
    if info.reference_region and [str(p) for p in reference[:1]] == list(info.reference[:1]):
        from pulid_flux.face.region import region_from_dict   # the run's own reference photo: its region

        regions[str(reference[0])] = region_from_dict(dict(info.reference_region), "run.json reference_region")
    try:
        result = score(out, reference=reference, engines=engines, models_dir=models_dir, configs=configs,
                       regions=regions)
    except ImportError:
        raise
    except Exception as exc:  # engines and images raise their own error types; the run itself is intact
        raise RunnerError(f"scoring failed: {type(exc).__name__}: {exc}. The images and manifest are complete; "
                          f"fix this and run `report {out}` (options --engine, --reference, --models-dir)") from exc
    path = write_report(out, result=result, spec_name=info.spec_name, spec_path=info.spec, tiny=info.tiny,
                        reference=reference, records=records, rules=info.rules, fingerprint=fingerprint,
                        total_jobs=total_jobs, selected_jobs=selected_jobs)
    log.info("report written: %s", path)
    return path
