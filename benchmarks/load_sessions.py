"""Load benchmark: N sessions start a tiny run at the same moment through the app's job manager.

It prints the wall time until every run has finished, how many trained at once (sampled from the run store), the
final statuses, and the process's peak resident memory, before and after the load.

    python -m benchmarks.load_sessions --sessions 20
"""

from __future__ import annotations

import argparse
import collections
import resource
import tempfile
import threading
import time
from pathlib import Path

from distill_core.jobs import JobManager, default_max_workers
from distill_core.store import RunStore
from distill_core.training import TrainConfig


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--student", default="mlp:64")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    config = TrainConfig(student=args.student, epochs=args.epochs, batch_size=64, train_fraction=0.2).to_dict()

    with tempfile.TemporaryDirectory() as home:
        store = RunStore(Path(home) / "runs.sqlite3")
        manager = JobManager(store)  # the app's default: 1 worker on a CPU, 1 per GPU
        before = peak_rss_mb()
        barrier = threading.Barrier(args.sessions)
        run_ids: list[str] = []

        def session(number: int) -> None:
            barrier.wait()
            run_ids.append(manager.submit("pair", {**config, "seed": number}, owner=f"session-{number}"))

        start = time.perf_counter()
        threads = [threading.Thread(target=session, args=(n,)) for n in range(args.sessions)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        peak_running = 0
        while manager.live_run_ids():
            peak_running = max(peak_running, manager.running_count())
            time.sleep(0.05)
        wall = time.perf_counter() - start
        statuses = collections.Counter(store.get_run(run_id).status for run_id in run_ids)
        manager.shutdown()

    print(f"sessions            : {args.sessions} (each {args.student}, {args.epochs} epochs, 700 examples)")
    print(f"workers             : {default_max_workers()} (at most {peak_running} seen training at once)")
    print(f"wall time           : {wall:.1f} s until every run finished ({wall / args.sessions:.2f} s per run)")
    print(f"final statuses      : {dict(statuses)}")
    print(f"peak RSS            : {before:.0f} MB before the load, {peak_rss_mb():.0f} MB after")
    print(f"RSS now             : {current_rss_mb():.0f} MB (after every run ended)")


if __name__ == "__main__":
    main()
