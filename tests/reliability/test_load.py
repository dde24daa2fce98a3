"""Load: twenty sessions start a tiny run at once. At most the configured number train together, the rest queue,
and every run finishes; none is lost."""

import threading

import pytest

from distill_core.jobs import JobManager
from distill_core.runs import execute_pair_run
from distill_core.store import RunStore
from distill_core.training import TrainConfig

pytestmark = pytest.mark.slow
SESSIONS = 20
MAX_WORKERS = 2
TINY = TrainConfig(student="mlp:8", epochs=1, batch_size=32, train_fraction=0.05).to_dict()


def test_twenty_concurrent_sessions_queue_and_all_finish():
    running = 0
    peak = 0
    lock = threading.Lock()

    def counted_pair_run(run_id, config, store, should_stop):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            execute_pair_run(run_id, config, store, should_stop)
        finally:
            with lock:
                running -= 1

    store = RunStore()
    manager = JobManager(store, max_workers=MAX_WORKERS, runners={"pair": counted_pair_run})
    run_ids: list[str] = []
    positions: list[int] = []
    start = threading.Barrier(SESSIONS)

    def session(number):
        start.wait()  # all twenty press Start at the same moment
        run_id = manager.submit("pair", {**TINY, "seed": number}, owner=f"session-{number}")
        status = manager.status(run_id)
        with lock:
            run_ids.append(run_id)
            if status.queue_position is not None:
                positions.append(status.queue_position)

    threads = [threading.Thread(target=session, args=(n,)) for n in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for run_id in run_ids:
        assert manager.wait(run_id, timeout=240).state == "finished"
    manager.shutdown()

    assert len(set(run_ids)) == SESSIONS
    assert 1 <= peak <= MAX_WORKERS
    assert positions and max(positions) >= SESSIONS - MAX_WORKERS - 2  # most sessions really waited in line
    records = [store.get_run(run_id) for run_id in run_ids]
    assert [record.status for record in records] == ["completed"] * SESSIONS
    assert all(len(store.history(run_id)) == 1 for run_id in run_ids)  # one epoch each, recorded
    assert {record.owner for record in records} == {f"session-{n}" for n in range(SESSIONS)}
