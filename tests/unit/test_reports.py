"""distill_core.reports: seed parsing, progress and ETA, run rows, seed statistics and multi-run exports.

Runs are written into a real RunStore in a temporary folder; expected numbers are computed independently here
(statistics module, hand arithmetic) rather than by calling the code under test.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest

from distill_core import reports
from distill_core.store import RunStore
from distill_core.teachers import list_teachers


def metrics(baseline: float, distilled: float) -> dict:
    cost = {"parameters": 100, "seconds_per_example": 2e-6}
    return {
        "teacher": {"name": "t", "test_accuracy": 0.98, "parameters": 1000, "seconds_per_example": 1e-5},
        "baseline": {"test_accuracy": baseline, **cost},
        "distilled": {"test_accuracy": distilled, **cost},
    }


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.sqlite3")


def add_run(store: RunStore, seed: int, baseline: float, distilled: float, status: str = "completed") -> str:
    config = {"dataset": "mnist5k", "student": "mlp:30", "temperature": 4.0, "alpha": 0.9, "epochs": 2}
    run_id = store.create_run({**config, "seed": seed, "omit_classes": [3]}, status="running")
    for epoch in (1.0, 2.0):
        event = {"epoch": epoch, "step": int(epoch), "steps_total": 2, "distilled_test_accuracy": distilled}
        store.append_event(run_id, {**event, f"extra_{seed}": seed})  # runs differ in their event columns
    store.finish_run(run_id, status, metrics(baseline, distilled), {"seconds": 1.0})
    return run_id


@pytest.mark.parametrize(("text", "seeds"), [("0", [0]), ("0,1,2", [0, 1, 2]), (" 3 1, 3 ", [3, 1])])
def test_parse_seeds_accepts_commas_and_spaces_and_drops_repeats(text: str, seeds: list[int]) -> None:
    assert reports.parse_seeds(text) == seeds


@pytest.mark.parametrize("text", ["", "a", "1,-2", "1.5", ",".join(str(s) for s in range(reports.MAX_SEEDS + 1))])
def test_parse_seeds_rejects_bad_text_naming_the_field(text: str) -> None:
    with pytest.raises(ValueError, match="seeds"):
        reports.parse_seeds(text)


def test_progress_of_a_pair_run_uses_steps_and_extrapolates_the_pace() -> None:
    done = reports.progress([{"epoch": 1.0, "step": 25, "steps_total": 100, "elapsed_seconds": 10.0}])
    assert done.fraction == pytest.approx(0.25)
    assert done.eta_seconds == pytest.approx(30.0)  # 10 s for a quarter: 30 s for the other three quarters


def test_progress_of_a_teacher_run_uses_epochs() -> None:
    done = reports.progress([{"epoch": 3, "epochs": 4, "elapsed_seconds": 6.0}])
    assert (done.fraction, done.eta_seconds) == (pytest.approx(0.75), pytest.approx(2.0))


def test_progress_before_any_event_has_no_eta() -> None:
    assert reports.progress([]) == reports.Progress(0.0, 0.0, None)


def test_progress_refuses_events_without_a_measure() -> None:
    with pytest.raises(ValueError, match="steps_total"):
        reports.progress([{"epoch": 1.0}])


def test_gain_points_is_the_difference_in_percentage_points() -> None:
    assert reports.gain_points(metrics(0.90, 0.925)) == pytest.approx(2.5)
    assert reports.gain_points({"baseline": {"test_accuracy": 0.9}}) is None


def test_run_row_shows_percentages_gain_and_omitted_class_names(store: RunStore) -> None:
    run_id = add_run(store, seed=5, baseline=0.80, distilled=0.86)
    row = reports.run_row(store.get_run(run_id))
    assert row["id"] == run_id and row["status"] == "completed" and row["seed"] == 5
    assert (row["baseline %"], row["distilled %"]) == (pytest.approx(80.0), pytest.approx(86.0))
    assert row["gain (points)"] == pytest.approx(6.0)
    assert row["omitted"] == "3"


def test_runs_table_leaves_out_teacher_runs(store: RunStore) -> None:
    pair = add_run(store, seed=0, baseline=0.8, distilled=0.9)
    store.create_run({"dataset": "mnist5k"}, kind="teacher")
    assert [row["id"] for row in reports.runs_table(store.list_runs())] == [pair]


def test_model_cost_rows_convert_seconds_to_microseconds() -> None:
    rows = {row["model"]: row for row in reports.model_cost_rows(metrics(0.8, 0.9))}
    assert rows["teacher"]["µs per example"] == pytest.approx(10.0)
    assert rows["distilled"]["µs per example"] == pytest.approx(2.0)
    assert rows["teacher"]["parameters"] == 1000


def test_seeds_summary_matches_statistics_over_completed_runs_only(store: RunStore) -> None:
    accuracies = [(0.80, 0.83), (0.82, 0.82), (0.79, 0.84)]
    records = [store.get_run(add_run(store, seed, *pair)) for seed, pair in enumerate(accuracies)]
    records.append(store.get_run(add_run(store, 9, 0.1, 0.9, status="cancelled")))
    summary = reports.seeds_summary(records)
    gains = [distilled - baseline for baseline, distilled in accuracies]
    assert summary["seeds"] == [0, 1, 2]
    assert summary["gain"]["mean"] == pytest.approx(statistics.mean(gains))
    assert summary["gain"]["std"] == pytest.approx(statistics.stdev(gains))
    assert summary["gain_points"] == pytest.approx([100 * gain for gain in gains])


def test_seeds_summary_is_none_when_nothing_completed(store: RunStore) -> None:
    assert reports.seeds_summary([store.get_run(add_run(store, 0, 0.5, 0.6, status="cancelled"))]) is None


def test_csv_export_of_several_runs_keeps_every_column_and_row(store: RunStore) -> None:
    first, second = add_run(store, 1, 0.8, 0.9), add_run(store, 2, 0.7, 0.75)
    rows = list(csv.DictReader(io.StringIO(reports.export_runs(store, [first, second], "csv"))))
    assert [row["run_id"] for row in rows] == [first, first, second, second]
    assert rows[0]["extra_1"] == "1" and rows[0]["extra_2"] == ""  # each run's own event columns survive
    assert rows[3]["extra_2"] == "2" and rows[3]["config.seed"] == "2"


def test_json_export_is_a_list_of_run_reports(store: RunStore) -> None:
    first, second = add_run(store, 1, 0.8, 0.9), add_run(store, 2, 0.7, 0.75)
    document = json.loads(reports.export_runs(store, [first, second], "json"))
    assert [report["run_id"] for report in document] == [first, second]
    assert document[1]["distilled"]["test_accuracy"] == 0.75
    assert len(document[0]["baseline"]["history"]) == 2


def test_export_refuses_unknown_format_and_missing_run(store: RunStore) -> None:
    with pytest.raises(ValueError, match="fmt"):
        reports.export_runs(store, [], "xml")
    with pytest.raises(ValueError, match="not found"):
        reports.export_runs(store, ["nope"], "json")


def test_teacher_rows_describe_the_bundled_teacher() -> None:
    row = next(row for row in reports.teacher_rows(list_teachers()) if row["name"] == "mnist5k-cnn")
    assert row["origin"] == "bundled" and row["dataset"] == "mnist5k"
    assert 0 < row["size MB"] < 100 and 50 < row["test accuracy %"] <= 100


def test_teacher_history_rows_are_in_percent() -> None:
    rows = reports.teacher_history_rows([{"epoch": 1, "epochs": 2, "loss": 0.5, "val_accuracy": 0.9}])
    assert rows == [{"epoch": 1, "val accuracy %": pytest.approx(90.0), "loss": 0.5}]
