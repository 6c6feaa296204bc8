"""The synthesis plan source: a view plan x candidate seeds -> a :class:`~..plan.RunPlan`, and the
grounding images' plan.

Jobs are the run engine's :class:`~..plan.Job` (ids hashed from the final graph, so a re-run finds
its finished jobs in the manifest and any change to a view, seed, workflow or override makes new
ones). Each view is one block (its jobs share a prompt, so one server encodes its text once).

* Candidate jobs run the shipped ``07_synthesis`` workflow (PuLID + pose ControlNet, no LoRA): the
  view's prompt (with the class phrase: PuLID supplies the identity), the seed, the uploaded portrait
  and the view's head pose and framing on the ``Head pose`` node, drawn at the latent's size. The
  image lands at ``candidates/<view>/<view>_s<seed>.png``.
* Grounding jobs run ``01_base`` (the base model alone: no LoRA, no PuLID) with trigger-free
  prompts; images land at ``grounding/reg_NNNN.png``.

Views and grounding items are :mod:`pulid_flux.synthesis` objects the command line passes in; this
module only describes jobs (it imports neither the library nor the engine).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...overrides import Override, apply_overrides, get_input, resolve_node, set_input
from ..errors import RunnerError
from ..plan import Job, Prompt, Reference, RunInfo, RunPlan, job_id_for
from . import RunRequest, resolve_reference
from .ablation.spec import has_node

WORKFLOWS_DIR = Path(__file__).resolve().parents[3] / "workflows"
SYNTHESIS_WORKFLOW = WORKFLOWS_DIR / "07_synthesis_api.json"
BASE_WORKFLOW = WORKFLOWS_DIR / "01_base_api.json"
#: where per-job values go in the workflows (node title, input)
PROMPT, SEED, REFERENCE, SAVE = ("Positive prompt", "text"), ("Seed", "noise_seed"), ("Reference image", "image"), \
    ("Save", "filename_prefix")
HEAD_POSE, LATENT = "Head pose", "Latent"
SYNTHESIS_CONFIG, GROUNDING_CONFIG = "synthesis", "grounding"


class PlanError(RunnerError):
    """A workflow or override that the synthesis plan cannot use."""


def load_workflow(path) -> dict:
    path = Path(path)
    try:
        graph = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read the workflow {path}: {exc}") from None
    except ValueError as exc:
        raise PlanError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(graph, dict) or not all(isinstance(n, dict) and "class_type" in n for n in graph.values()):
        raise PlanError(f"{path} is not an API-format workflow (use the *_api.json twin)")
    return graph


def _require(graph: dict, path, node: str, what: str) -> None:
    if not has_node(graph, node):
        raise PlanError(f"{path}: no node titled {node!r} ({what})")


@dataclass(frozen=True)
class JobSettings:
    """What every job of a run shares."""

    reference_image: str | None = None        # LoadImage value of the uploaded portrait
    tiny: bool = False
    overrides: tuple[Override, ...] = ()       # --set, applied last


def _finish_job(graph: dict, *, config: str, prompt: Prompt, seed: int, params: tuple, file: str, block: int,
                settings: JobSettings, order: int, pose: str) -> Job:
    """Tiny profile, then the overrides that name a node of this graph (the base workflow has no
    ``Head pose``), then the head pose drawn at the latent's size, then the id and output prefix."""
    if settings.tiny:
        from ...tiny_profile import adapt_for_tiny

        graph = adapt_for_tiny(graph)
    overrides = [o for o in settings.overrides if has_node(graph, o.node)]
    if overrides:
        graph = apply_overrides(graph, overrides)
    if has_node(graph, HEAD_POSE) and has_node(graph, LATENT):
        for side in ("width", "height"):
            set_input(graph, HEAD_POSE, side, get_input(graph, LATENT, side), in_place=True)
    save_node = resolve_node(graph, SAVE[0])
    job_id = job_id_for(config, prompt, seed, params, graph, save_node)
    set_input(graph, save_node, SAVE[1], f"pulid_studio_{config}/{job_id}", in_place=True)
    return Job(job_id=job_id, config=config, prompt=prompt, seed=seed, params=params, pose=pose,
               full_body=pose == "full_body", rule="as-is", graph=graph, save_node=save_node, file=file, block=block,
               order=order)


def candidate_jobs(workflow: dict, views: Sequence, seeds: Sequence[int], subject: str, settings: JobSettings,
                   *, workflow_path="workflow", file_for=None) -> list[Job]:
    """One job per view x seed (``views``: :class:`pulid_flux.synthesis.View`; ``subject``: the prompt's
    subject words, e.g. 'a man'; ``file_for(view, seed)``: the output path)."""
    for node, what in ((PROMPT[0], "the prompt"), (SEED[0], "the seed"), (HEAD_POSE, "the view's head pose"),
                       (REFERENCE[0], "the portrait"), (SAVE[0], "the output")):
        _require(workflow, workflow_path, node, what)
    unknown = [str(o.node) for o in settings.overrides if not has_node(workflow, o.node)]
    if unknown:
        raise PlanError(f"--set names node(s) {', '.join(unknown)} that {workflow_path} does not have")
    jobs = []
    for block, view in enumerate(views, 1):
        prompt = Prompt(index=block, tag=view.name, text=view.prompt(subject), composition=view.framing)
        for seed in seeds:
            graph = set_input(workflow, PROMPT[0], PROMPT[1], prompt.text)
            set_input(graph, SEED[0], SEED[1], int(seed), in_place=True)
            for name, value in (("yaw", view.yaw), ("pitch", view.pitch), ("roll", view.roll),
                                ("framing", view.framing)):
                set_input(graph, HEAD_POSE, name, value, in_place=True)
            if settings.reference_image is not None:
                set_input(graph, REFERENCE[0], REFERENCE[1], settings.reference_image, in_place=True)
            params = (("view", view.name), ("yaw", view.yaw), ("pitch", view.pitch), ("distance", view.distance))
            jobs.append(_finish_job(graph, config=SYNTHESIS_CONFIG, prompt=prompt, seed=int(seed), params=params,
                                    file=file_for(view, seed), block=block, settings=settings, order=len(jobs),
                                    pose=view.framing))
    return jobs


def grounding_jobs(workflow: dict, items: Sequence, settings: JobSettings, *, workflow_path="workflow") -> list[Job]:
    """One base-model job per grounding image (``items``: :class:`pulid_flux.synthesis.GroundingImage`
    whose ``path`` is set)."""
    for node, what in ((PROMPT[0], "the prompt"), (SEED[0], "the seed"), (SAVE[0], "the output")):
        _require(workflow, workflow_path, node, what)
    if any(has_node(workflow, node) for node in (REFERENCE[0], "PuLID")):
        raise PlanError(f"{workflow_path}: grounding images come from the base model; this workflow has PuLID")
    jobs = []
    for n, item in enumerate(items, 1):
        prompt = Prompt(index=n, tag=item.name, text=item.prompt)
        graph = set_input(workflow, PROMPT[0], PROMPT[1], item.prompt)
        set_input(graph, SEED[0], SEED[1], int(item.seed), in_place=True)
        jobs.append(_finish_job(graph, config=GROUNDING_CONFIG, prompt=prompt, seed=int(item.seed), params=(),
                                file=item.path, block=n, settings=settings, order=n - 1, pose="none"))
    return jobs


# ------------------------------------------------------------------------------------ run plans


def pulid_reference(request: RunRequest) -> Reference:
    """What PuLID gets: the portrait (the request's first reference), or with ``--tiny`` the synthetic
    face the tiny face pack sees (the portrait is still what the local filter compares with)."""
    if request.tiny:
        return resolve_reference(RunRequest(out=request.out, tiny=True))
    return resolve_reference(request)


def job_settings(request: RunRequest, reference: Reference, overrides: Sequence[Override]) -> JobSettings:
    return JobSettings(reference_image=reference.image_value, tiny=request.tiny, overrides=tuple(overrides))


def run_info(request: RunRequest, *, what: str, source_file: Path, selection: dict) -> RunInfo:
    return RunInfo(source="synthesis", spec=str(source_file), spec_name=what, tiny=request.tiny,
                   tiny_models=str(request.tiny_models) if request.tiny and request.tiny_models else None,
                   reference=tuple(str(p) for p in request.references),
                   launch=str(request.launch.resolve()) if request.launch else None,
                   selection=selection, configs=(SYNTHESIS_CONFIG, GROUNDING_CONFIG))


def candidates_plan(request: RunRequest, views: Sequence, seeds: Sequence[int], subject: str, *, workflow_path,
                    overrides: Sequence[Override], info: RunInfo, file_for) -> RunPlan:
    """The candidate views' plan (``file_for(view, seed)``: each image's path in the output folder)."""
    reference = pulid_reference(request)
    jobs = candidate_jobs(load_workflow(workflow_path), views, seeds, subject,
                          job_settings(request, reference, overrides), workflow_path=workflow_path, file_for=file_for)
    return RunPlan(out=request.out, jobs=tuple(jobs), all_jobs=tuple(jobs), reference=reference, info=info)


def grounding_plan(request: RunRequest, items: Sequence, *, workflow_path, overrides: Sequence[Override],
                   before: RunPlan) -> RunPlan:
    """The grounding images' plan; its ``all_jobs`` keep ``before``'s (the candidates), so the engine
    treats the folder as one run."""
    jobs = grounding_jobs(load_workflow(workflow_path), items, job_settings(request, before.reference, overrides),
                          workflow_path=workflow_path)
    return RunPlan(out=request.out, jobs=tuple(jobs), all_jobs=before.all_jobs + tuple(jobs),
                   reference=before.reference, info=before.info)
