"""Stored runs summarised for people: table rows, progress and ETA, seed statistics, cost tables and exports.

The app's pages show runs in several shapes (one row per run, a progress bar, a parameters-and-speed table, a CSV of
many runs). Every number in those shapes is computed here from `RunRecord`s and history events, so the views hold no
arithmetic and a notebook can build the same tables.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .data import DATASETS
from .runs import run_report
from .store import EXPORT_FORMATS, RunRecord, RunStore
from .teachers import TeacherInfo
from .training import summarize_seeds

MAX_SEEDS = 10  # seeds one submission may queue; more would hold the shared workers for a long time


def parse_seeds(text: str) -> list[int]:
    """Parse "0" or "0,1,2" (commas or spaces) into distinct seeds, in the order given."""
    parts = [part for part in re.split(r"[,\s]+", str(text).strip()) if part]
    if not parts or not all(part.isdigit() for part in parts):
        raise ValueError(f"seeds must be whole numbers >= 0 separated by commas, such as 0 or 0,1,2; got {text!r}")
    seeds = list(dict.fromkeys(int(part) for part in parts))
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"seeds: at most {MAX_SEEDS} per submission, got {len(seeds)}; submit the rest later")
    return seeds


@dataclass(frozen=True)
class Progress:
    """How far a run is: `fraction` in [0, 1] and the estimated seconds left (None before any progress)."""

    fraction: float
    elapsed_seconds: float
    eta_seconds: float | None


def progress(history: Sequence[dict[str, Any]]) -> Progress:
    """Progress from the latest event: step/steps_total for pair runs, epoch/epochs for teacher runs.

    The ETA assumes the remaining work goes at the average pace so far.
    """
    if not history:
        return Progress(0.0, 0.0, None)
    last = history[-1]
    if last.get("steps_total"):
        fraction = last["step"] / last["steps_total"]
    elif last.get("epochs"):
        fraction = last["epoch"] / last["epochs"]
    else:
        raise ValueError("history events must carry step/steps_total or epoch/epochs to measure progress")
    fraction = min(max(float(fraction), 0.0), 1.0)
    elapsed = float(last.get("elapsed_seconds", 0.0))
    eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
    return Progress(fraction, elapsed, eta)


def gain_points(metrics: dict[str, Any]) -> float | None:
    """Distilled minus baseline test accuracy in percentage points; None until both exist."""
    baseline = metrics.get("baseline", {}).get("test_accuracy")
    distilled = metrics.get("distilled", {}).get("test_accuracy")
    if baseline is None or distilled is None:
        return None
    return 100 * (distilled - baseline)


def class_list(classes: Sequence[int], dataset: str) -> str:
    """Class indices as their names, e.g. "3" or "cat, dog"; "" for none."""
    names = DATASETS[dataset].class_names if dataset in DATASETS else ()
    return ", ".join(names[index] if index < len(names) else str(index) for index in classes)


def run_label(record: RunRecord) -> str:
    """A short human label for a pair run: id, student, T, alpha, seed and any classes left out."""
    config = record.config
    label = (
        f"{record.run_id} · {config.get('student')} · T={config.get('temperature'):g} · "
        f"α={config.get('alpha'):g} · seed {config.get('seed')}"
    )
    omitted = class_list(config.get("omit_classes", []), config.get("dataset", ""))
    return f"{label} · without {omitted}" if omitted else label


def run_row(record: RunRecord) -> dict[str, Any]:
    """One row of the runs table (accuracies in percent, gain in points; None where not known)."""
    config, metrics = record.config, record.metrics or {}
    dataset = config.get("dataset", "")
    return {
        "id": record.run_id,
        "status": record.status,
        "student": config.get("student"),
        "T": config.get("temperature"),
        "alpha": config.get("alpha"),
        "epochs": config.get("epochs"),
        "seed": config.get("seed"),
        "omitted": class_list(config.get("omit_classes", []), dataset),
        "baseline %": _percent(metrics.get("baseline", {}).get("test_accuracy")),
        "distilled %": _percent(metrics.get("distilled", {}).get("test_accuracy")),
        "gain (points)": gain_points(metrics),
        "dataset": dataset,
        "created": _local_time(record.created_at),
    }


def runs_table(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Rows of `run_row` for the pair runs among `records` (teacher runs have no students to compare)."""
    return [run_row(record) for record in records if record.kind == "pair"]


def model_cost_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Teacher vs students: parameters and inference time per example in microseconds (batched, eval mode)."""
    rows = []
    for model in ("teacher", "baseline", "distilled"):
        entry = metrics.get(model) or {}
        seconds = entry.get("seconds_per_example")
        rows.append(
            {
                "model": model,
                "parameters": entry.get("parameters"),
                "µs per example": None if seconds is None else 1e6 * seconds,
                "test accuracy %": _percent(entry.get("test_accuracy")),
            }
        )
    return rows


def seeds_summary(records: Sequence[RunRecord]) -> dict[str, Any] | None:
    """Mean ± std across the completed runs (see `summarize_seeds`), plus gains in points; None if none finished."""
    done = [record for record in records if record.status == "completed" and gain_points(record.metrics) is not None]
    if not done:
        return None
    summary = summarize_seeds(
        [record.config.get("seed") for record in done],
        [record.metrics["baseline"]["test_accuracy"] for record in done],
        [record.metrics["distilled"]["test_accuracy"] for record in done],
    )
    summary["gain_points"] = [100 * gain for gain in summary["gain"]["values"]]
    return summary


def teacher_rows(teachers: Sequence[TeacherInfo]) -> list[dict[str, Any]]:
    """One row per teacher: name, origin, dataset, architecture, test accuracy (%), size (MB), parameters."""
    return [
        {
            "name": info.name,
            "origin": info.origin,
            "dataset": info.dataset,
            "architecture": info.metadata.get("architecture", ""),
            "test accuracy %": _percent(info.test_accuracy),
            "size MB": info.size_bytes / 1e6,
            "parameters": info.metadata.get("parameters"),
        }
        for info in teachers
    ]


def teacher_history_rows(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A teacher run's events as rows: epoch, validation accuracy (%) and the last minibatch's loss."""
    return [
        {"epoch": event["epoch"], "val accuracy %": _percent(event.get("val_accuracy")), "loss": event.get("loss")}
        for event in history
    ]


def export_runs(store: RunStore, run_ids: Sequence[str], fmt: str) -> str:
    """Several runs as one download: 'json' is a list of `run_report`s, 'csv' one table of all their events."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(EXPORT_FORMATS)}; got {fmt!r}")
    if fmt == "json":
        reports = [run_report(_record(store, run_id), store.history(run_id)) for run_id in run_ids]
        return json.dumps(reports, indent=2)
    # Each run's CSV has its own columns (config fields, event keys); the union keeps every one of them.
    rows = [row for run_id in run_ids for row in csv.DictReader(io.StringIO(store.export_run(run_id, "csv")))]
    fieldnames = list(dict.fromkeys(column for row in rows for column in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _record(store: RunStore, run_id: str) -> RunRecord:
    record = store.get_run(run_id)
    if record is None:
        raise ValueError(f"run {run_id!r} not found; it may have been deleted meanwhile")
    return record


def _percent(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def _local_time(timestamp: str) -> str:
    """An ISO timestamp (UTC) as 'YYYY-MM-DD HH:MM' in the server's local time."""
    return datetime.fromisoformat(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")
