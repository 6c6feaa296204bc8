"""Scheduling jobs over servers with fake servers: pipelining, least-loaded, affinity, failover, Ctrl-C."""

from collections import Counter

import pytest
from runner_fakes import FakeJob, FakeServer, RecordingSink, make_jobs

from api_client.runner.execution.scheduler import JobPool, Scheduler


def run(servers, jobs, **kwargs):
    sink = RecordingSink()
    outcome = Scheduler(servers, sink, poll_interval=0.0, **kwargs).run(jobs)
    return sink, outcome


def test_single_server_keeps_two_queued_and_runs_in_order():
    server = FakeServer("a", ticks=3)
    jobs = make_jobs(3, 4)
    sink, outcome = run([server], jobs)
    assert outcome.complete
    assert sink.done_ids == [j.job_id for j in jobs]          # run order = spec order
    assert server.max_queued == 2                              # pipelined: the next one always waits queued
    assert server.submitted == server.executed == sink.done_ids


def test_depth_is_respected():
    server = FakeServer("a", ticks=2)
    _, outcome = run([server], make_jobs(2, 5), depth=3)
    assert server.max_queued == 3 and outcome.complete
    server = FakeServer("b", ticks=2)
    run([server], make_jobs(2, 5), depth=1)
    assert server.max_queued == 1


def test_two_servers_share_the_work_by_prompt_block():
    a, b = FakeServer("a", ticks=2), FakeServer("b", ticks=2)
    jobs = make_jobs(4, 4)
    sink, outcome = run([a, b], jobs)
    assert outcome.complete
    assert sorted(sink.done_ids) == sorted(j.job_id for j in jobs)
    assert len(sink.done_ids) == len(set(sink.done_ids))
    # Affinity: every prompt block ran on a single server (its text encoding stays cached there).
    for block in range(1, 5):
        assert len({sink.servers[j.job_id] for j in jobs if j.block == block}) == 1
    assert Counter(sink.servers.values()) == {"a": 8, "b": 8}


def test_least_loaded_server_gets_the_next_job():
    a, b = FakeServer("a", ticks=1), FakeServer("b", ticks=50)
    jobs = make_jobs(3, 6)
    sink, outcome = run([a, b], jobs)
    assert outcome.complete
    # The fast server drains its blocks and then takes jobs from the end of the slow server's block.
    assert Counter(sink.servers.values())["a"] > Counter(sink.servers.values())["b"]
    assert b.max_queued <= 2 and a.max_queued <= 2
    assert sorted(sink.done_ids) == sorted(j.job_id for j in jobs)


def test_dead_server_jobs_move_to_the_other_server_exactly_once():
    a, b = FakeServer("a", ticks=1, die_after=3), FakeServer("b", ticks=1)
    jobs = make_jobs(2, 6)
    sink, outcome = run([a, b], jobs)
    assert outcome.complete and outcome.dead_servers == ["a"]
    assert sorted(sink.done_ids) == sorted(j.job_id for j in jobs)
    assert len(sink.done_ids) == len(set(sink.done_ids))
    # a died right after its third prompt, before that image could be fetched: that one ran again on b.
    assert sum(1 for s in sink.servers.values() if s == "a") == len(a.executed) - 1 == 2
    assert a.closed
    # The jobs a had queued when it died were submitted again to b.
    assert set(a.submitted) - set(a.executed) <= set(b.submitted)


def test_every_server_gone_leaves_jobs_not_run():
    a = FakeServer("a", ticks=1, die_after=2)
    jobs = make_jobs(1, 5)
    sink, outcome = run([a], jobs)
    assert not outcome.complete
    # The second prompt ran but the server died before its image was fetched: it is not done.
    assert sink.done_ids == [jobs[0].job_id]
    assert [j.job_id for j in outcome.not_run] == [j.job_id for j in jobs[1:]]
    assert not sink.failed_ids  # lost to a dead server is not a job failure: it runs on resume


def test_a_job_that_kills_every_server_is_given_up():
    servers = [FakeServer(n, ticks=1, die_after=0) for n in "abcd"]
    jobs = [FakeJob("x", block=1, order=0)]
    sink, outcome = run(servers, jobs, max_attempts=3)
    assert sink.failed_ids == ["x"] and "giving up" in sink.errors["x"]
    assert not outcome.complete


def test_rejected_and_failing_jobs_do_not_stop_the_others():
    server = FakeServer("a", reject=frozenset({"b1j1"}), fail=frozenset({"b1j2"}))
    jobs = make_jobs(1, 4)
    sink, outcome = run([server], jobs)
    assert sink.done_ids == ["b1j0", "b1j3"]
    assert sorted(sink.failed_ids) == ["b1j1", "b1j2"]
    assert "value_not_in_list" in sink.errors["b1j1"] and "boom" in sink.errors["b1j2"]
    assert not outcome.complete


def test_ctrl_c_cancels_queued_prompts_and_records_them():
    server = FakeServer("a", ticks=1, interrupt_on_poll=3)
    jobs = make_jobs(1, 6)
    sink, outcome = run([server], jobs)
    assert outcome.was_interrupted
    assert len(sink.done_ids) == 2
    assert sorted(server.cancelled) == ["a-2", "a-3"]
    assert sink.interrupted_ids == ["b1j2", "b1j3"]
    assert not server.queue


def test_pool_affinity_and_stealing():
    pool = JobPool(make_jobs(2, 3))
    assert pool.take("a").job_id == "b1j0"
    assert pool.take("b").job_id == "b2j0"           # a new block for a new server
    assert pool.take("a").job_id == "b1j1"           # a stays on its block
    assert pool.take("a").job_id == "b1j2"
    assert pool.take("a").job_id == "b2j2"           # a's block is empty: steal from the end of b's
    assert pool.take("b").job_id == "b2j1"
    assert pool.take("a") is None and len(pool) == 0


def test_pool_put_back_keeps_order_and_frees_the_block():
    jobs = make_jobs(1, 3)
    pool = JobPool(jobs)
    first = pool.take("a")
    pool.release("a")
    pool.put_back(first)
    assert [j.job_id for j in pool.pending] == ["b1j0", "b1j1", "b1j2"]
    assert pool.take("b").job_id == "b1j0"


def test_scheduler_refuses_bad_setups():
    with pytest.raises(ValueError, match="no server"):
        Scheduler([], RecordingSink())
    with pytest.raises(ValueError, match="listed twice"):
        Scheduler([FakeServer("a"), FakeServer("a")], RecordingSink())
    with pytest.raises(ValueError, match="depth"):
        Scheduler([FakeServer("a")], RecordingSink(), depth=0)
