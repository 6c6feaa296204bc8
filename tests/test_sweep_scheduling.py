"""Block affinity over several servers: a server never returns to a block it left (so a checkpoint
sweep loads each LoRA at most once per server, and an ablation encodes each prompt once per server)."""

from itertools import groupby

import pytest
from test_runner_fakes import FakeServer, RecordingSink, make_jobs

from api_client.runner.scheduler import JobPool, Scheduler


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

    from api_client.runner.launch import model_paths_yaml

    models = tmp_path / "models"
    (models / "loras").mkdir(parents=True)
    sweep_dir = tmp_path / "my trainings" / "id"
    config = yaml.safe_load(model_paths_yaml([models], {"loras": [sweep_dir]}))
    first = next(iter(config))
    assert config[first] == {"is_default": True, "loras": str(sweep_dir.resolve())}
    assert config["models_0"]["loras"] == "loras"
    assert yaml.safe_load(model_paths_yaml([models])) == {"models_0": {"base_path": str(models.resolve()),
                                                                       "loras": "loras"}}
