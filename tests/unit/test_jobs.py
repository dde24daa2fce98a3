"""The job manager: bounded workers, FIFO queue positions, cancelling queued and running jobs, failures,
worker-count configuration and recovery of runs left behind by a dead process.

The runners here are small test doubles for the training code (tested separately): they write real events and
final statuses into a real RunStore, and use events and barriers, never long sleeps, to pin down timing.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from distill_core import jobs
from distill_core.jobs import JobManager, default_max_workers, get_manager
from distill_core.store import RunStore

TIMEOUT = 10  # seconds; only reached when something is broken
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "distill_core"


def record_completed(run_id: str, store: RunStore) -> None:
    """What a successful training run leaves in the store."""
    store.mark_running(run_id)
    store.append_event(run_id, {"epoch": 1, "step": 1})
    store.finish_run(run_id, "completed", {"distilled": {"test_accuracy": 0.9}}, {"seconds": 0.01})


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.sqlite3")


@pytest.fixture
def managers():
    """Build managers that are shut down after the test, so no worker outlives it."""
    built: list[JobManager] = []

    def build(store: RunStore, **kwargs) -> JobManager:
        built.append(JobManager(store, **kwargs))
        return built[-1]

    yield build
    for manager in built:
        manager.shutdown(wait=True)


def test_one_worker_runs_jobs_one_at_a_time_in_submission_order(store, managers):
    lock, gate, first_started = threading.Lock(), threading.Event(), threading.Event()
    active, peak, order = [0], [0], []

    def runner(run_id, config, store, should_stop):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
            order.append(config["index"])
        first_started.set()
        assert gate.wait(TIMEOUT)
        record_completed(run_id, store)
        with lock:
            active[0] -= 1

    manager = managers(store, max_workers=1, runners={"pair": runner})
    run_ids = [manager.submit("pair", {"index": index}, owner="session-1") for index in range(5)]
    assert first_started.wait(TIMEOUT)

    assert manager.status(run_ids[0]).state == "running"
    waiting = [manager.status(run_id) for run_id in run_ids[1:]]
    assert [status.state for status in waiting] == ["queued"] * 4
    assert [status.queue_position for status in waiting] == [1, 2, 3, 4]
    assert {status.store_status for status in waiting} == {"queued"}
    assert (manager.running_count(), manager.queue_length()) == (1, 4)
    assert manager.live_run_ids() == run_ids

    gate.set()
    finals = [manager.wait(run_id, timeout=TIMEOUT) for run_id in run_ids]
    assert [(status.state, status.store_status) for status in finals] == [("finished", "completed")] * 5
    assert peak[0] == 1
    assert order == list(range(5))
    assert all(store.history(run_id) == [{"epoch": 1, "step": 1}] for run_id in run_ids)
    assert {record.owner for record in store.list_runs()} == {"session-1"}
    assert (manager.running_count(), manager.queue_length(), manager.live_run_ids()) == (0, 0, [])


def test_two_workers_run_two_jobs_at_once_and_never_three(store, managers):
    lock = threading.Lock()
    active, peak = [0], [0]
    both_running = threading.Barrier(2, timeout=TIMEOUT)  # breaks (and fails the run) unless two run together

    def runner(run_id, config, store, should_stop):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        both_running.wait()
        record_completed(run_id, store)
        with lock:
            active[0] -= 1

    manager = managers(store, max_workers=2, runners={"pair": runner})
    run_ids = [manager.submit("pair", {}) for _ in range(4)]
    assert [manager.wait(run_id, timeout=TIMEOUT).store_status for run_id in run_ids] == ["completed"] * 4
    assert peak[0] == 2


def test_cancelling_a_queued_job_means_it_never_runs(store, managers):
    gate, started, calls = threading.Event(), threading.Event(), []

    def runner(run_id, config, store, should_stop):
        calls.append(run_id)
        started.set()
        assert gate.wait(TIMEOUT)
        record_completed(run_id, store)

    manager = managers(store, max_workers=1, runners={"pair": runner})
    blocker = manager.submit("pair", {})
    assert started.wait(TIMEOUT)
    queued = manager.submit("pair", {})
    assert manager.cancel(queued) is True

    status = manager.status(queued)
    assert (status.state, status.store_status, status.queue_position) == ("finished", "cancelled", None)
    assert manager.queue_length() == 0
    gate.set()
    assert manager.wait(blocker, timeout=TIMEOUT).store_status == "completed"
    assert calls == [blocker]
    assert manager.cancel(queued) is False  # no longer live


def test_cancelling_a_running_job_flips_should_stop(store, managers):
    started, stop_seen = threading.Event(), threading.Event()

    def runner(run_id, config, store, should_stop):
        store.mark_running(run_id)
        started.set()
        epoch = 0
        while not should_stop():  # a training loop checks between steps
            epoch += 1
            store.append_event(run_id, {"epoch": epoch})
            time.sleep(0.001)  # one training step
        stop_seen.set()
        store.finish_run(run_id, "cancelled", {}, {"epochs": epoch})

    manager = managers(store, max_workers=1, runners={"pair": runner})
    run_id = manager.submit("pair", {})
    assert started.wait(TIMEOUT)
    assert manager.status(run_id).state == "running"
    assert manager.cancel(run_id) is True

    final = manager.wait(run_id, timeout=TIMEOUT)
    assert stop_seen.is_set()
    assert (final.state, final.store_status) == ("finished", "cancelled")
    assert len(store.history(run_id)) == store.get_run(run_id).timing["epochs"]


def test_a_runner_that_raises_fails_the_run_with_a_one_line_error(store, managers, caplog):
    def runner(run_id, config, store, should_stop):
        store.mark_running(run_id)
        raise RuntimeError("loss exploded\nsecond line of detail")

    manager = managers(store, max_workers=1, runners={"pair": runner})
    with caplog.at_level(logging.ERROR, logger="distill_core.jobs"):
        run_id = manager.submit("pair", {})
        final = manager.wait(run_id, timeout=TIMEOUT)

    assert (final.state, final.store_status) == ("finished", "failed")
    assert store.get_run(run_id).error == "RuntimeError: loss exploded"
    assert any(record.exc_info and run_id in record.getMessage() for record in caplog.records)
    # The worker survived and serves the next job.
    assert manager.wait(manager.submit("pair", {}), timeout=TIMEOUT).store_status == "failed"


def test_a_runner_that_records_no_end_fails_the_run(store, managers):
    manager = managers(store, max_workers=1, runners={"pair": lambda *args: None})
    final = manager.wait(manager.submit("pair", {}), timeout=TIMEOUT)
    assert final.store_status == "failed"
    assert "without recording" in store.get_run(final.run_id).error


def test_shutdown_cancels_queued_jobs_and_stops_running_ones(store, managers):
    started = threading.Event()

    def runner(run_id, config, store, should_stop):
        started.set()
        while not should_stop():
            time.sleep(0.001)  # one training step
        store.finish_run(run_id, "cancelled", {}, {})

    manager = managers(store, max_workers=1, runners={"pair": runner})
    running, queued = manager.submit("pair", {}), manager.submit("pair", {})
    assert started.wait(TIMEOUT)
    manager.shutdown(wait=True)

    assert store.get_run(running).status == "cancelled"
    assert store.get_run(queued).status == "cancelled" and "shut down" in store.get_run(queued).error
    with pytest.raises(RuntimeError, match="shut down"):
        manager.submit("pair", {})


def test_submit_rejects_unknown_kinds_and_status_of_unknown_runs(store, managers):
    manager = managers(store, max_workers=1, runners={"pair": record_completed_runner})
    with pytest.raises(ValueError, match="kind must be one of pair"):
        manager.submit("student", {})
    with pytest.raises(ValueError, match="max_workers"):
        JobManager(store, max_workers=0, runners={})
    assert manager.status("no-such-run").state == "unknown"
    outside = store.create_run({})  # queued by someone else, not live in this manager
    assert manager.status(outside) == jobs.JobStatus(outside, "queued", None, "queued")
    assert manager.cancel(outside) is False


def record_completed_runner(run_id, config, store, should_stop):
    record_completed(run_id, store)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_max_workers_env_must_be_a_positive_integer(monkeypatch, value):
    monkeypatch.setenv("DISTILL_MAX_WORKERS", value)
    with pytest.raises(ValueError, match="DISTILL_MAX_WORKERS"):
        default_max_workers()


def test_max_workers_env_and_gpu_count(monkeypatch):
    monkeypatch.setenv("DISTILL_MAX_WORKERS", " 3 ")
    assert default_max_workers() == 3
    monkeypatch.delenv("DISTILL_MAX_WORKERS")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert default_max_workers() == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert default_max_workers() == 4


def test_a_new_manager_recovers_runs_of_a_dead_process(store, managers):
    # Another process starts a run and dies without finishing it (skipping the package __init__, for speed).
    child = f"""
import sys, types
package = types.ModuleType("distill_core")
package.__path__ = [{str(PACKAGE_DIR)!r}]
sys.modules["distill_core"] = package
from distill_core.store import RunStore
store = RunStore(sys.argv[1])
run_id = store.create_run({{}})
store.mark_running(run_id)
store.append_event(run_id, {{"epoch": 1}})
print(run_id)
"""
    result = subprocess.run(
        [sys.executable, "-c", child, str(store.path)], capture_output=True, text=True, check=True, timeout=60
    )
    orphan = result.stdout.strip()
    assert store.get_run(orphan).status == "running"

    manager = managers(store, max_workers=1, runners={"pair": record_completed_runner})
    assert manager.recovered_run_ids == [orphan]
    assert manager.status(orphan) == jobs.JobStatus(orphan, "finished", None, "interrupted")
    assert store.history(orphan) == [{"epoch": 1}]


def test_get_manager_is_one_per_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_MAX_WORKERS", "1")
    first, second = get_manager(tmp_path / "a"), get_manager(tmp_path / "b")
    first.shutdown()
    replacement = get_manager(tmp_path / "a")
    replacement.shutdown()
    second.shutdown()
    assert second is not first and second.store.path == (tmp_path / "b" / "runs.sqlite3").resolve()
    assert replacement is not first  # a shut-down manager is replaced
    assert get_manager(tmp_path / "b") is not second


def test_get_manager_returns_the_same_manager_for_the_same_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_MAX_WORKERS", "1")
    manager = get_manager(tmp_path)
    try:
        assert get_manager(tmp_path) is manager
        monkeypatch.setenv("DISTILL_HOME", str(tmp_path))
        assert get_manager() is manager
    finally:
        manager.shutdown()
