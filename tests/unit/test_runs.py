"""Recording runs: events and final metrics reach the store, the JSON report has the documented shape, and a
completed run keeps its distilled student for the explorer."""

import pytest

from distill_core.data import load_dataset
from distill_core.models import predict_logits
from distill_core.runs import (
    delete_run,
    execute_pair_run,
    load_run_student,
    run_report,
    runs_with_students,
    student_path,
)
from distill_core.store import RunStore
from distill_core.training import TrainConfig

TINY = TrainConfig(student="mlp:16", epochs=2, batch_size=64, train_fraction=0.2)


@pytest.fixture
def finished_run():
    store = RunStore()
    run_id = store.create_run(TINY.to_dict(), owner="test")
    execute_pair_run(run_id, TINY.to_dict(), store, lambda: False)
    return store, run_id


def test_a_completed_run_is_recorded_with_history_metrics_and_report(finished_run):
    store, run_id = finished_run
    record = store.get_run(run_id)
    assert record.status == "completed" and record.timing["seconds"] > 0
    assert [event["epoch"] for event in store.history(run_id)] == [1.0, 2.0]
    report = run_report(record, store.history(run_id))
    assert report["distilled"]["history"][-1]["test_accuracy"] == report["distilled"]["test_accuracy"]
    assert report["baseline"]["history"][0]["hard_loss"] == store.history(run_id)[0]["baseline_hard_loss"]


def test_the_saved_student_reproduces_the_reported_test_accuracy(finished_run):
    store, run_id = finished_run
    student = load_run_student(run_id)
    test = load_dataset("mnist5k").test
    accuracy = (predict_logits(student, test.images).argmax(1) == test.labels).float().mean().item()
    assert accuracy == pytest.approx(store.get_run(run_id).metrics["distilled"]["test_accuracy"], abs=1e-6)
    assert [record.run_id for record in runs_with_students(store, "mnist5k")] == [run_id]
    assert runs_with_students(store, "fashion-mnist") == []


def test_deleting_a_run_removes_its_student(finished_run):
    store, run_id = finished_run
    assert student_path(run_id).is_file()
    assert delete_run(store, run_id)
    assert not student_path(run_id).exists() and store.get_run(run_id) is None
    assert not delete_run(store, run_id)
    with pytest.raises(ValueError, match="no saved student"):
        load_run_student(run_id)


def test_a_cancelled_run_keeps_no_student():
    store = RunStore()
    run_id = store.create_run(TINY.to_dict(), owner="test")
    execute_pair_run(run_id, TINY.to_dict(), store, lambda: True)
    assert store.get_run(run_id).status == "cancelled"
    assert not student_path(run_id).exists()
