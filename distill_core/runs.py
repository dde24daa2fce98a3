"""Running a job and recording it: the bridge between training code and the run store.

The job manager's workers and the CLI both call these functions, so a run started from the browser and one started
from a terminal are recorded identically. `run_report` turns a stored run into the JSON document that
`train --json` writes and `runs export --format json` prints.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import nn

from .paths import subdir
from .store import RunRecord, RunStore
from .teacher_training import TeacherConfig, train_teacher
from .teachers import build_teacher_model, read_checkpoint, save_checkpoint
from .training import EventCallback, StopCheck, TrainConfig, train_pair


def execute_pair_run(
    run_id: str,
    config: dict[str, Any],
    store: RunStore,
    should_stop: StopCheck,
    data_dir: str | os.PathLike[str] | None = None,
    on_event: EventCallback | None = None,
) -> None:
    """Train a pair for a stored run, streaming each event into the store (then to `on_event`) and finishing."""
    store.mark_running(run_id)

    def record(event: dict[str, Any]) -> None:
        store.append_event(run_id, event)
        if on_event is not None:
            on_event(event)

    result = train_pair(
        TrainConfig.from_dict(config),
        on_event=record,
        should_stop=should_stop,
        data_dir=data_dir,
    )
    if result.status == "completed":  # the explorer's loss anatomy can then ask this trained student
        metadata = {"architecture": result.config.student, "dataset": result.config.dataset, "run_id": run_id}
        save_checkpoint(student_path(run_id, data_dir), result.students["distilled"], {**metadata, "origin": "run"})
    store.finish_run(run_id, result.status, metrics=result.metrics(), timing=result.timing, error=result.error)


def student_path(run_id: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a completed run's distilled student is kept (the run id is ours, never user text)."""
    return subdir("students", data_dir) / f"{run_id}-distilled.pt"


def load_run_student(run_id: str, data_dir: str | os.PathLike[str] | None = None) -> nn.Module:
    """The distilled student of a completed run, in eval mode, loaded as safely as a teacher."""
    path = student_path(run_id, data_dir)
    if not path.is_file():
        raise ValueError(f"run {run_id!r} has no saved student (only completed runs keep one)")
    state, metadata = read_checkpoint(path)
    model, _ = build_teacher_model(state, metadata, f"the student of run {run_id!r}")
    return model


def runs_with_students(
    store: RunStore, dataset: str, data_dir: str | os.PathLike[str] | None = None
) -> list[RunRecord]:
    """Completed pair runs on `dataset` whose distilled student is saved, newest first."""
    return [
        record
        for record in store.list_runs(statuses=["completed"])
        if record.kind == "pair"
        and record.config.get("dataset") == dataset
        and student_path(record.run_id, data_dir).is_file()
    ]


def delete_run(store: RunStore, run_id: str, data_dir: str | os.PathLike[str] | None = None) -> bool:
    """Delete a run's record, history and saved student; False when there was no such run."""
    student_path(run_id, data_dir).unlink(missing_ok=True)
    return store.delete_run(run_id)


def execute_teacher_run(
    run_id: str,
    config: dict[str, Any],
    store: RunStore,
    should_stop: StopCheck,
    data_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Train a teacher for a stored run; progress events go to the store like a pair run's."""
    store.mark_running(run_id)
    path, metadata = train_teacher(
        TeacherConfig(**config),
        on_event=lambda event: store.append_event(run_id, event),
        should_stop=should_stop,
        data_dir=data_dir,
        command="Distill Explorer app: Teachers page",
    )
    if path is None:
        store.finish_run(run_id, "cancelled", metrics={}, timing={})
        return
    metrics = {key: metadata[key] for key in ("name", "val_accuracy", "test_accuracy", "parameters")}
    store.finish_run(run_id, "completed", metrics=metrics, timing={"seconds": metadata["train_seconds"]})


def run_report(record: RunRecord, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The documented JSON schema of a pair run (see README, "JSON output")."""
    metrics = record.metrics or {}
    report: dict[str, Any] = {
        "run_id": record.run_id,
        "status": record.status,
        "config": record.config,
        "teacher": {key: metrics.get("teacher", {}).get(key) for key in ("name", "test_accuracy")},
        "timing": {key: record.timing.get(key) for key in ("seconds", "samples_per_second")},
    }
    for student in ("baseline", "distilled"):
        report[student] = {
            **metrics.get(student, {}),
            "history": [_student_history(event, student) for event in history],
        }
    return report


def _student_history(event: dict[str, Any], student: str) -> dict[str, Any]:
    """One history row of one student: its own accuracies and losses under unprefixed names."""
    row = {"epoch": event.get("epoch"), "step": event.get("step")}
    prefix = f"{student}_"
    row.update({key[len(prefix) :]: value for key, value in event.items() if key.startswith(prefix)})
    return row
