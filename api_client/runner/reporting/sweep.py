"""The checkpoint sweep's report: every finished image scored, then ``sweep.csv``, ``curve.png``,
``strips/``, ``report.md`` and the ready ablation spec (``pulid_flux.sweep``).

It reads the run's records and ``RunInfo.details`` (what the sweep source recorded: the columns,
the CLIP model, δ and ε, the style settings), so it works right after the run and in
``report OUT``. Nothing is scored again when the images and the scoring settings are those of the
last report (``sweep_state.json``); ``--force-report`` scores anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import RunnerError
from ..files import write_json_atomic
from ..plan import RunInfo

log = logging.getLogger("api_client.runner")

SWEEP_STATE = "sweep_state.json"
TINY_CLIP = "tiny"
_SCORING_KEYS = ("clip_model", "dataset", "models_dir", "delta", "epsilon", "style", "columns")


def _fingerprint(records: Sequence[Mapping], settings: Mapping) -> str:
    payload = {"jobs": sorted(r["job_id"] for r in records), "settings": settings}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _is_current(out: Path, fingerprint: str) -> bool:
    from pulid_flux.sweep.report import REPORT
    from pulid_flux.sweep.report_html import REPORT_HTML

    try:
        state = json.loads((out / SWEEP_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (out / REPORT).is_file() and (out / REPORT_HTML).is_file() and state.get("fingerprint") == fingerprint


def report_sweep(out: Path, info: RunInfo, records: Sequence[Mapping], *, force: bool = False,
                 models_dir: str | Path | None = None, reference: Sequence[Path] = (), progress=None) -> Path | None:
    """Score the sweep's finished images and write every output (skipped when nothing changed);
    ``progress(done, total, "score")`` after each scored image."""
    from pulid_flux.sweep.report import REPORT

    out = Path(out)
    details = dict(info.details)
    if models_dir:
        details["models_dir"] = str(Path(models_dir).resolve())
    references = [str(Path(p).resolve()) for p in reference] or list(info.reference)
    records = [r for r in records if r.get("files")]
    if not records:
        log.warning("no finished image to score; no report written")
        return None
    fingerprint = _fingerprint(records, {**{k: details.get(k) for k in _SCORING_KEYS}, "reference": references})
    if not force and _is_current(out, fingerprint):
        log.info("report %s is up to date (same images, same scoring settings)", out / REPORT)
        return out / REPORT
    try:
        path = _score_and_write(out, info, details, references, records, progress)
    except (ImportError, RunnerError):
        raise
    except Exception as exc:  # engines and images raise their own types; the images and manifest are intact
        raise RunnerError(f"scoring failed: {type(exc).__name__}: {exc}. The images and manifest are complete; fix "
                          f"this and run the same command again (nothing is generated twice) or `report {out}`") \
            from exc
    write_json_atomic(out / SWEEP_STATE, {"fingerprint": fingerprint})
    log.info("report written: %s", path)
    return path


def _clip_model(details: Mapping, info: RunInfo) -> str:
    if details["clip_model"] != TINY_CLIP:
        return details["clip_model"]
    from pulid_flux.sweep.clip_score import CLIP_SCORE_FOLDER
    from pulid_flux.tiny.open_clip_tiny import write_tiny_open_clip

    # Built (or reused) and its architecture registered with open_clip in this process.
    arch, weights = write_tiny_open_clip(Path(info.tiny_models) / CLIP_SCORE_FOLDER)
    return f"{arch}:{weights}"


def _score_and_write(out: Path, info: RunInfo, details: Mapping, references: Sequence[str],
                     records: Sequence[Mapping], progress=None) -> Path:
    from pulid_flux.sweep.clip_score import load_clip_scorer, parse_clip_model
    from pulid_flux.sweep.outputs import write_sweep_outputs
    from pulid_flux.sweep.report import SweepInfo
    from pulid_flux.sweep.scoring import (
        SweepImage,
        dataset_features,
        load_identity_engines,
        score_images,
    )

    columns = {c["folder"]: c for c in details["columns"]}
    order = {c["folder"]: i for i, c in enumerate(details["columns"])}
    images = []
    for record in sorted((r for r in records if r.get("config") in columns),
                         key=lambda r: (order[r["config"]], r.get("index", 0), r.get("seed", 0))):
        column = columns[record["config"]]
        images.append(SweepImage(step=column["step"], checkpoint=column["checkpoint"], prompt=record["tag"],
                                 prompt_text=record["prompt"], seed=record["seed"], file=record["files"][0],
                                 style_lora=column["style_lora"], style_strength=column["style_strength"]))
    models_dir = Path(details["models_dir"]) if details.get("models_dir") else None
    if info.tiny and models_dir is not None and not (models_dir / "insightface").is_dir():
        from pulid_flux.tiny import build_tiny_models

        build_tiny_models(models_dir, include=["insightface"])
    engines = load_identity_engines([Path(p) for p in references], models_dir=models_dir)
    clip_model = _clip_model(details, info)
    clip = load_clip_scorer(parse_clip_model(clip_model))
    dataset = dataset_features(clip, Path(details["dataset"])) if details.get("dataset") else None
    style = details.get("style")
    log.info("scoring %d image(s): identity (%s), CLIP score (%s)%s", len(images),
             ", ".join(k for k, run in engines.runs.items() if run is not None), clip.name,
             ", memorization" if dataset is not None else "")
    rows = score_images(out, images, engines=engines, clip=clip, dataset=dataset,
                        style_prompt=style["prompt"] if style else None, progress=progress)
    sweep_info = SweepInfo(checkpoint_dir=details["checkpoint_dir"], spec=info.spec, config=details["config"],
                           reference=references, clip_model=clip.name, identity_column=engines.identity_column,
                           engines=engines.notes, tiny=info.tiny, dataset=details.get("dataset"), style=style,
                           run_lines=lora_load_lines(records, details["lora_node_id"]),
                           prompt_texts={im.prompt: im.prompt_text for im in images})
    return write_sweep_outputs(out, rows, [(c["group"], c["label"]) for c in details["columns"]], info=sweep_info,
                               delta=details["delta"], epsilon=details["epsilon"],
                               write_spec=lambda rec: _write_spec(out, info, details, rec)).paths["report"]


def _write_spec(out: Path, info: RunInfo, details: Mapping, recommendation) -> Path:
    import yaml

    from pulid_flux.sweep.report import ablation_spec_data, write_ablation_spec

    style = details.get("style")
    checkpoint = style["checkpoint"] if style else recommendation.name
    source_path = Path(info.spec)
    data = ablation_spec_data(yaml.safe_load(source_path.read_text(encoding="utf-8")), source_path=source_path,
                              checkpoint=checkpoint, lora_node=details["lora_node"],
                              lora_configs=details["lora_configs"],
                              reference=[] if info.tiny else list(info.reference),
                              style={"lora": style["lora"], "strength": recommendation.label} if style else None)
    tag = Path(checkpoint).stem + (f"_style{recommendation.label}" if style else "")
    path = out / f"ablation_{tag}.yaml"
    header = [f"The 4-config comparison with {checkpoint}"
              + (f" + {style['lora']} at {recommendation.label}" if style else "") + ", written by pulid-studio sweep.",
              (f"pulid-studio ablate {path} --lora-dir {details['checkpoint_dir']} --launch COMFYUI_PATH "
              "--reference IMAGE --out OUT")]
    return write_ablation_spec(path, data, header=header)


def lora_load_lines(records: Sequence[Mapping], node: str) -> list[str]:
    """How often the LoRA loader executed, per server and column (from the jobs' observed events)."""
    observed = [r for r in records if r.get("executed") is not None]
    if not observed:
        return []
    loads = Counter((r.get("server", "?"), r["config"]) for r in observed if node in r["executed"])
    servers = {r.get("server", "?") for r in observed}
    return [(f"LoRA loader (node {node}) executed {sum(loads.values())} time(s) over {len(observed)} observed job(s) "
            f"for {len({r['config'] for r in observed})} column(s) on {len(servers)} server(s); at most "
            f"{max(loads.values(), default=0)} time(s) per column and server (ComfyUI's cache served the rest)")]
