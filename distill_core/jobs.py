"""The job manager: a bounded pool of background workers that run training jobs from a FIFO queue.

Training cannot run inside a Streamlit script (a rerun would kill it), so the app submits jobs here and polls.
The run store owns every run's record; this module owns only what is live right now: the queue, the running
jobs and their stop flags. Workers are threads, which is enough because torch releases the GIL in its kernels.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import data_home
from .store import DB_FILENAME, TERMINAL_STATUSES, RunStore

MAX_WORKERS_ENV = "DISTILL_MAX_WORKERS"
JOB_STATES = ("queued", "running", "finished", "unknown")

# (run_id, config, store, should_stop): records its own events and final status in the store, then returns.
Runner = Callable[[str, dict[str, Any], RunStore, Callable[[], bool]], None]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobStatus:
    """Where a run stands: `state` is one of JOB_STATES; `queue_position` is 1-based while queued here."""

    run_id: str
    state: str
    queue_position: int | None
    store_status: str | None


@dataclass
class _Job:
    run_id: str
    kind: str
    config: dict[str, Any]
    stop: threading.Event = field(default_factory=threading.Event)


def default_max_workers() -> int:
    """Workers to run at once: $DISTILL_MAX_WORKERS if set, else one per CUDA device, else 1."""
    raw = os.environ.get(MAX_WORKERS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(
                f"{MAX_WORKERS_ENV} must be a whole number >= 1, got {raw!r}; fix it or unset it to use one"
                " worker per GPU"
            )
        return int(raw)
    import torch  # only here, so that importing the job manager stays light

    return max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1


class JobManager:
    """Runs submitted jobs on at most `max_workers` background threads, first come first served."""

    def __init__(
        self,
        store: RunStore,
        max_workers: int | None = None,
        runners: dict[str, Runner] | None = None,
    ) -> None:
        """Recover the runs a dead process left behind, then accept jobs of the kinds in `runners`."""
        workers = default_max_workers() if max_workers is None else max_workers
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
        self.store = store
        self.max_workers = workers
        self._runners = dict(runners) if runners is not None else _default_runners()
        # Guards every attribute below; notified whenever a job is queued, starts, ends or is cancelled.
        self._changed = threading.Condition()
        self._queued: dict[str, _Job] = {}  # insertion order is the FIFO order
        self._running: dict[str, _Job] = {}
        self._workers: list[threading.Thread] = []
        self._closed = False
        self.recovered_run_ids = store.recover_interrupted()

    def submit(
        self,
        kind: str,
        config: dict[str, Any],
        *,
        owner: str = "",
        teacher_id: str = "",
        label: str = "",
    ) -> str:
        """Queue a job: record it in the store as 'queued' and return its run id."""
        if kind not in self._runners:
            raise ValueError(f"kind must be one of {', '.join(self._runners)}; got {kind!r}")
        with self._changed:
            if self._closed:
                raise RuntimeError("this job manager has shut down; get a new one with get_manager()")
            run_id = self.store.create_run(config, kind=kind, teacher_id=teacher_id, owner=owner, label=label)
            self._queued[run_id] = _Job(run_id, kind, dict(config))
            self._start_workers()
            self._changed.notify_all()
        return run_id

    def status(self, run_id: str) -> JobStatus:
        """The run's state: live here (queued with its position, or running), finished, or unknown."""
        with self._changed:
            queue = list(self._queued)
            running = run_id in self._running
        record = self.store.get_run(run_id)
        store_status = record.status if record is not None else None
        if store_status in TERMINAL_STATUSES:
            return JobStatus(run_id, "finished", None, store_status)
        if running:
            return JobStatus(run_id, "running", None, store_status)
        if run_id in queue:
            return JobStatus(run_id, "queued", queue.index(run_id) + 1, store_status)
        # Not live here: a queued or running run of another process (store_status is then the state), or none.
        return JobStatus(run_id, store_status or "unknown", None, store_status)

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued job (it never starts) or ask a running one to stop; False if not live here."""
        with self._changed:
            job = self._queued.pop(run_id, None)
            running = self._running.get(run_id)
            self._changed.notify_all()
        if job is not None:
            self._record_end(run_id, "cancelled", None)
            return True
        if running is not None:
            running.stop.set()  # cooperative: the runner sees should_stop() and records 'cancelled'
            return True
        return False

    def wait(self, run_id: str, timeout: float | None = None) -> JobStatus:
        """Block until the run is no longer live here (or `timeout` seconds pass); return its status."""
        with self._changed:
            self._changed.wait_for(lambda: run_id not in self._queued and run_id not in self._running, timeout)
        return self.status(run_id)

    def live_run_ids(self) -> list[str]:
        """Ids of the running jobs, then the queued ones in the order they will start."""
        with self._changed:
            return [*self._running, *self._queued]

    def queue_length(self) -> int:
        """How many jobs wait for a worker."""
        with self._changed:
            return len(self._queued)

    def running_count(self) -> int:
        """How many jobs run right now."""
        with self._changed:
            return len(self._running)

    def shutdown(self, wait: bool = True, cancel_running: bool = True) -> None:
        """Stop taking jobs, cancel the queued ones; optionally stop the running ones and join the workers."""
        with self._changed:
            self._closed = True
            never_started = list(self._queued)
            self._queued.clear()
            running = list(self._running.values())
            workers = list(self._workers)
            self._changed.notify_all()
        for run_id in never_started:
            self._record_end(run_id, "cancelled", "the job manager shut down before this run started")
        if cancel_running:
            for job in running:
                job.stop.set()
        if wait:
            for worker in workers:
                worker.join()

    # ----------------------------------------------------------------------------------------- workers

    def _start_workers(self) -> None:
        """Start the pool on first use (caller holds the lock); idle workers wait on the condition."""
        while len(self._workers) < self.max_workers:
            worker = threading.Thread(target=self._work, name=f"distill-worker-{len(self._workers) + 1}", daemon=True)
            self._workers.append(worker)
            worker.start()

    def _work(self) -> None:
        """A worker's life: take the oldest queued job, run it, repeat until shutdown."""
        while (job := self._next_job()) is not None:
            try:
                self._execute(job)
            finally:
                with self._changed:
                    del self._running[job.run_id]
                    self._changed.notify_all()

    def _next_job(self) -> _Job | None:
        """Wait for a queued job and move it to running; None once the manager has shut down."""
        with self._changed:
            self._changed.wait_for(lambda: self._queued or self._closed)
            if self._closed:
                return None
            job = self._queued.pop(next(iter(self._queued)))
            self._running[job.run_id] = job
            return job

    def _execute(self, job: _Job) -> None:
        """Run one job; record 'failed' if the runner raises, and any end the runner forgot to record."""
        try:
            self._runners[job.kind](job.run_id, job.config, self.store, job.stop.is_set)
            record = self.store.get_run(job.run_id)
        except Exception as error:
            logger.exception("run %s (%s) failed", job.run_id, job.kind)
            self._record_end(job.run_id, "failed", _one_line(error))
            return
        if record is not None and record.status not in TERMINAL_STATUSES:
            if job.stop.is_set():
                self._record_end(job.run_id, "cancelled", None)
            else:
                self._record_end(job.run_id, "failed", "the runner returned without recording how the run ended")

    def _record_end(self, run_id: str, status: str, error: str | None) -> None:
        """Set a final status; if that fails (run deleted meanwhile, store not writable) only log it."""
        try:
            self.store.set_status(run_id, status, error)
        except Exception:  # a worker must survive any store failure to serve the next job
            logger.exception("could not record run %s as %s", run_id, status)


def _one_line(error: Exception) -> str:
    """'Type: first line of the message', what the app shows for a failed run (the log has the traceback)."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _default_runners(data_dir: str | os.PathLike[str] | None = None) -> dict[str, Runner]:
    """The training runners of distill_core.runs, imported on first use so importing jobs stays light."""

    def runner(name: str) -> Runner:
        def run(run_id: str, config: dict[str, Any], store: RunStore, should_stop: Callable[[], bool]) -> None:
            from . import runs

            getattr(runs, name)(run_id, config, store, should_stop, data_dir=data_dir)

        return run

    return {"pair": runner("execute_pair_run"), "teacher": runner("execute_teacher_run")}


_MANAGERS: dict[Path, JobManager] = {}
_MANAGERS_LOCK = threading.Lock()


def get_manager(data_dir: str | os.PathLike[str] | None = None) -> JobManager:
    """The process-wide job manager for a data directory, so every browser session shares one pool."""
    path = (data_home(data_dir) / DB_FILENAME).resolve()
    with _MANAGERS_LOCK:
        manager = _MANAGERS.get(path)
        if manager is None or manager._closed:
            manager = JobManager(RunStore(path), runners=_default_runners(data_dir))
            _MANAGERS[path] = manager
        return manager
