"""Block affinity over several servers: a server never returns to a block it left (so a checkpoint
sweep loads each LoRA at most once per server, and an ablation encodes each prompt once per server)."""

from itertools import groupby

import pytest
from runner_fakes import FakeServer, RecordingSink, make_jobs

from api_client.runner.execution.scheduler import JobPool, Scheduler


def block_runs(sequence):
    """The blocks a server worked on, one entry per uninterrupted run."""
    return [block for block, _ in groupby(sequence)]


def test_a_thief_keeps_stealing_from_the_same_block():
    # Three servers, two blocks: the third server must steal; it used to alternate between blocks.
    pool = JobPool(make_jobs(2, 6))
    taken = {"a": [], "b": [], "c": []}
    while len(pool):
        for server, blocks in taken.items():
            job = pool.take(server)
            if job is not None:
                blocks.append(job.block)
    for server, blocks in taken.items():
        runs = block_runs(blocks)
        assert len(runs) == len(set(runs)), f"{server} came back to a block: {blocks}"
    assert taken["c"], "the third server found work by stealing"


@pytest.mark.parametrize("servers, ticks", [(2, (1, 3)), (3, (1, 2, 5)), (3, (4, 1, 1))])
def test_no_server_runs_a_block_twice_through_the_scheduler(servers, ticks):
    fakes = [FakeServer(name, ticks=t) for name, t in zip("abc", ticks[:servers])]
    jobs = make_jobs(3, 8)
    sink = RecordingSink()
    outcome = Scheduler(fakes, sink, poll_interval=0.0).run(jobs)
    assert outcome.complete and sorted(sink.done_ids) == sorted(j.job_id for j in jobs)
    block_of = {j.job_id: j.block for j in jobs}
    for fake in fakes:
        runs = block_runs([block_of[j] for j in fake.executed])
        assert len(runs) == len(set(runs)), f"{fake.name} came back to a block: {runs}"


def test_launch_yaml_puts_the_checkpoint_folder_first(tmp_path):
    import yaml

    from api_client.runner.execution.launch import model_paths_yaml

    models = tmp_path / "models"
    (models / "loras").mkdir(parents=True)
    sweep_dir = tmp_path / "my trainings" / "id"
    config = yaml.safe_load(model_paths_yaml([models], {"loras": [sweep_dir]}))
    first = next(iter(config))
    assert config[first] == {"is_default": True, "loras": str(sweep_dir.resolve())}
    assert config["models_0"]["loras"] == "loras"
    assert yaml.safe_load(model_paths_yaml([models])) == {"models_0": {"base_path": str(models.resolve()),
                                                                       "loras": "loras"}}


# ----------------------------------------------------------------------------- the sweep's jobs

def sweep_setup(max_prompts=3, seeds=(1, 2)):
    from pathlib import Path

    from api_client.runner.sources.ablation.jobs import Selection
    from api_client.runner.sources.ablation.spec import load_spec
    from api_client.runner.sources.sweep.jobs import identity_columns, sweep_config
    from pulid_flux.sweep.checkpoints import Checkpoint

    spec = load_spec(Path(__file__).resolve().parents[1] / "workflows" / "ablation.yaml")
    checkpoints = [Checkpoint(f"id_{s:09d}.safetensors", Path(f"/x/id_{s:09d}.safetensors"), s) for s in (250, 500)]
    checkpoints.append(Checkpoint("id.safetensors", Path("/x/id.safetensors"), None, final=True))
    names = {c.file: c.file for c in checkpoints}
    config = sweep_config(spec, "02_lora", "LoRA")
    columns = identity_columns(checkpoints, names, 1.0)
    return spec, config, columns, Selection(max_prompts=max_prompts, seeds=seeds, tiny=True)


def test_sweep_jobs_are_column_major_with_snake_prompts():
    from api_client.runner.sources.sweep.jobs import sweep_jobs

    spec, config, columns, selection = sweep_setup()
    jobs = sweep_jobs(spec, config, columns, lora_node="LoRA", selection=selection)
    assert len(jobs) == 3 * 3 * 2 and len({j.job_id for j in jobs}) == 18
    assert [j.block for j in jobs] == [0] * 6 + [1] * 6 + [2] * 6
    assert [j.order for j in jobs] == list(range(18))
    order = [(j.config, j.prompt.index, j.seed) for j in jobs]
    assert order[:6] == [("id_000000250", p, s) for p in (1, 2, 3) for s in (1, 2)]
    assert order[6:12] == [("id_000000500", p, s) for p in (3, 2, 1) for s in (1, 2)]   # snake: 3 is reused
    assert order[12:] == [("id", p, s) for p in (1, 2, 3) for s in (1, 2)]
    for job in jobs:
        lora = job.graph["20"]["inputs"]
        assert lora["lora_name"] == f"{job.config}.safetensors" and lora["strength_model"] == 1.0
        assert job.file == f"gallery/{job.config}/{job.prompt.index:02d}_{job.prompt.tag}_s{job.seed}.png"
        assert dict(job.params) == {"checkpoint": f"{job.config}.safetensors"}
    # Stable ids: the same plan gives the same jobs (resume finds them).
    assert [j.job_id for j in sweep_jobs(spec, config, columns, lora_node="LoRA", selection=selection)] == \
        [j.job_id for j in jobs]


def test_naive_order_is_prompt_major():
    from api_client.runner.sources.sweep.jobs import naive_order, sweep_jobs

    spec, config, columns, selection = sweep_setup(max_prompts=2, seeds=(1,))
    naive = naive_order(sweep_jobs(spec, config, columns, lora_node="LoRA", selection=selection))
    assert [(j.prompt.index, j.config) for j in naive] == [
        (p, c) for p in (1, 2) for c in ("id_000000250", "id_000000500", "id")]
    assert [j.block for j in naive] == [1, 1, 1, 2, 2, 2]


def test_style_columns_stack_the_style_lora():
    from api_client.runner.sources.sweep.jobs import style_columns, sweep_jobs
    from pulid_flux.sweep.checkpoints import Checkpoint

    spec, config, _, selection = sweep_setup(max_prompts=1, seeds=(1,))
    chosen = Checkpoint("id_000000500.safetensors", None, 500)
    columns = style_columns(chosen, {chosen.file: chosen.file}, 1.0, "water.safetensors", [0, 0.5, 1])
    jobs = sweep_jobs(spec, config, columns, lora_node="LoRA", selection=selection)
    assert [j.config for j in jobs] == ["style-0", "style-0.5", "style-1"]
    for job, strength in zip(jobs, (0.0, 0.5, 1.0)):
        assert job.graph["20"]["inputs"]["lora_name"] == "id_000000500.safetensors"
        style = next(n for n in job.graph.values() if n.get("_meta", {}).get("title") == "LoRA 2")
        assert style["inputs"]["lora_name"] == "water.safetensors" and style["inputs"]["strength_model"] == strength
        assert dict(job.params) == {"checkpoint": "id_000000500.safetensors", "style_strength": strength}


def test_the_sweep_config_must_have_the_lora_node():
    from api_client.runner.sources.ablation.spec import SpecError
    from api_client.runner.sources.sweep.jobs import sweep_config

    spec, *_ = sweep_setup()
    with pytest.raises(SpecError, match="has no node 'LoRA'"):
        sweep_config(spec, "01_base", "LoRA")
    with pytest.raises(SpecError, match="no config named 'nope'"):
        sweep_config(spec, "nope", "LoRA")
