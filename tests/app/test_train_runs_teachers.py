"""AppTest checks of the Train, Runs and Teachers pages, driven through their widgets like a user would.

One tiny paired run (mlp:16, 1 epoch, 10% of the transfer set) is trained once through the Train form and shared by
the tests of this module, so the file stays fast; everything lives in a temporary DISTILL_HOME.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from distill_core import jobs
from distill_core.store import TERMINAL_STATUSES, RunStore
from distill_core.teachers import BUNDLED_DIR

pytestmark = pytest.mark.app

APP = str(Path(__file__).resolve().parents[2] / "app.py")
POLL_LIMIT_SECONDS = 60
START_BUTTON = "FormSubmitter:train_form-Start training"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private data directory for this module, with fresh process-wide caches (store, job manager)."""
    path = tmp_path_factory.mktemp("distill_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISTILL_HOME", str(path))
        st.cache_resource.clear()
        yield path
        jobs.get_manager().shutdown(wait=True)
        st.cache_resource.clear()


@pytest.fixture(autouse=True)
def distill_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Overrides the suite's per-test data directory: these tests share the module's, where the run lives."""
    monkeypatch.setenv("DISTILL_HOME", str(home))
    return home


def page(name: str, **query: str) -> AppTest:
    """A fresh browser session on views/<name>.py, with optional URL query parameters."""
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.switch_page(f"views/{name}.py")
    return app.run()


def run_until_finished(app: AppTest, run_id: str) -> AppTest:
    """Rerun the page (AppTest never fires run_every) until the store says the run has ended."""
    deadline = time.monotonic() + POLL_LIMIT_SECONDS
    while RunStore().get_run(run_id).status not in TERMINAL_STATUSES:
        assert time.monotonic() < deadline, f"run {run_id} did not finish within {POLL_LIMIT_SECONDS} s"
        time.sleep(0.3)
    return app.run()


def metrics_by_label(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def fill_tiny_run(app: AppTest) -> AppTest:
    app.text_input(key="train_custom_student").set_value("mlp:16")
    app.number_input(key="train_epochs").set_value(1)
    app.slider(key="train_fraction").set_value(0.1)
    app.number_input(key="train_batch_size").set_value(64)
    return app


@pytest.fixture(scope="module")
def trained(home: Path) -> tuple[AppTest, str]:
    """The tiny run, submitted through the form and followed on the page until it ended."""
    app = fill_tiny_run(page("train"))
    app.button(key=START_BUTTON).click().run()
    assert not app.exception
    run_id = app.query_params["run"]
    return run_until_finished(app, run_id), run_id


@pytest.mark.parametrize("name", ["train", "runs", "teachers"])
def test_each_page_renders_without_exception(home: Path, name: str) -> None:
    app = page(name)
    assert not app.exception
    assert app.title[0].value  # the page drew its body, not only the sidebar


SPANISH = {
    "train": ("Entrena un estudiante", "Épocas"),
    "runs": ("Ejecuciones", None),
    "teachers": ("Maestros", "Épocas"),
}


@pytest.mark.parametrize("name", list(SPANISH))
def test_each_page_renders_in_spanish(trained: tuple[AppTest, str], name: str) -> None:
    app = page(name)
    app.sidebar.radio(key="language").set_value("es").run()
    assert not app.exception and not app.error
    title, number_label = SPANISH[name]
    assert app.title[0].value == title
    if number_label:
        assert number_label in [box.label for box in app.number_input]


def test_finished_run_is_explained_in_spanish(trained: tuple[AppTest, str]) -> None:
    _, run_id = trained
    app = page("train", run=run_id)
    app.sidebar.radio(key="language").set_value("es").run()
    assert not app.exception
    assert {"Estudiante base (solo etiquetas)", "Estudiante destilado (objetivos suaves)"} <= set(metrics_by_label(app))
    assert any("estado: **completada**" in caption.value for caption in app.caption)
    assert app.button(key="FormSubmitter:train_form-Iniciar entrenamiento")  # the form's button speaks Spanish too


def test_form_submission_records_the_run_and_shows_final_metrics(trained: tuple[AppTest, str]) -> None:
    app, run_id = trained
    record = RunStore().get_run(run_id)
    assert record.status == "completed", record.error
    assert record.config["student"] == "mlp:16" and record.config["epochs"] == 1
    assert record.config["train_fraction"] == pytest.approx(0.1) and record.config["batch_size"] == 64
    shown = metrics_by_label(app)
    assert shown["Distilled (soft targets)"] == f"{100 * record.metrics['distilled']['test_accuracy']:.1f}%"
    assert shown["Baseline (labels only)"] == f"{100 * record.metrics['baseline']['test_accuracy']:.1f}%"
    assert not app.exception and not app.error


def test_fresh_session_reattaches_from_the_url(trained: tuple[AppTest, str]) -> None:
    first, run_id = trained
    second = page("train", run=run_id)
    assert not second.exception
    assert metrics_by_label(second) == metrics_by_label(first)
    assert any(run_id in caption.value for caption in second.caption)


@pytest.mark.parametrize(
    ("widget", "value", "message"),
    [
        ("train_custom_student", "banana:12", "unknown model spec"),
        ("train_seeds", "zero, one", "seeds must be whole numbers"),
    ],
)
def test_bad_input_shows_an_error_and_queues_nothing(home: Path, widget: str, value: str, message: str) -> None:
    before = len(RunStore().list_runs())
    app = page("train")
    app.text_input(key=widget).set_value(value)
    app.button(key=START_BUTTON).click().run()
    assert not app.exception
    assert any(message in error.value for error in app.error)
    assert len(RunStore().list_runs()) == before
    assert "run" not in app.query_params


def test_overlapping_class_filters_are_refused(home: Path) -> None:
    app = page("train")
    app.multiselect(key="train_omit_mnist5k").set_value(["3"])
    app.multiselect(key="train_only_mnist5k").set_value(["7", "8"])
    app.button(key=START_BUTTON).click().run()
    assert not app.exception and len(app.error) == 1


def test_missing_threes_preset_fills_the_form(home: Path) -> None:
    app = page("train")
    app.button(key="train_preset_threes").click().run()
    assert app.selectbox(key="train_student").value == "mlp:800-800"
    assert app.slider(key="train_temperature").value == 8.0
    assert app.slider(key="train_alpha").value == 1.0
    assert app.number_input(key="train_epochs").value == 30
    assert app.multiselect(key="train_omit_mnist5k").value == ["3"]


def test_stop_button_cancels_a_run_and_keeps_it(home: Path) -> None:
    app = fill_tiny_run(page("train"))
    app.number_input(key="train_epochs").set_value(50)
    app.button(key=START_BUTTON).click().run()
    run_id = app.query_params["run"]
    app.button(key=f"stop_{run_id}").click().run()
    app = run_until_finished(app, run_id)
    assert RunStore().get_run(run_id).status == "cancelled"
    assert any("stopped before the end" in warning.value for warning in app.warning)
    assert not app.exception


def finished_dummy_run(store: RunStore) -> str:
    """A completed run written straight into the store (no training), to be deleted."""
    config = {"dataset": "mnist5k", "student": "mlp:30", "temperature": 2.0, "alpha": 0.5, "epochs": 1, "seed": 7}
    run_id = store.create_run(config, status="running")
    store.append_event(run_id, {"epoch": 1.0, "step": 1, "steps_total": 1, "distilled_test_accuracy": 0.5})
    store.finish_run(run_id, "completed", {"baseline": {"test_accuracy": 0.4}, "distilled": {"test_accuracy": 0.5}}, {})
    return run_id


def test_runs_page_lists_runs_and_deletes_only_after_confirmation(trained: tuple[AppTest, str]) -> None:
    _, trained_id = trained
    store = RunStore()
    doomed = finished_dummy_run(store)
    app = page("runs")
    ids = list(app.dataframe[0].value["id"])
    assert trained_id in ids and doomed in ids
    app.session_state["runs_table"] = {"selection": {"rows": [ids.index(doomed)], "columns": []}}
    app.run()
    assert not app.exception
    assert app.button(key="runs_delete").disabled  # nothing is deleted before "I understand"
    app.checkbox(key="runs_confirm").check().run()
    app.button(key="runs_delete").click().run()
    assert not app.exception
    assert store.get_run(doomed) is None and store.get_run(trained_id) is not None
    assert "Deleted 1 run(s)." in app.success[0].value
    assert doomed not in list(app.dataframe[0].value["id"])


def test_runs_page_compares_selected_runs(trained: tuple[AppTest, str]) -> None:
    _, trained_id = trained
    app = page("runs")
    ids = list(app.dataframe[0].value["id"])
    app.session_state["runs_table"] = {"selection": {"rows": [ids.index(trained_id)], "columns": []}}
    app.run()
    assert not app.exception
    assert app.subheader[0].value == "1 run(s) selected"
    assert {button.key for button in app.get("download_button")} == {"runs_csv", "runs_json"}


def test_teachers_page_lists_the_bundled_teacher(home: Path) -> None:
    app = page("teachers")
    table = app.dataframe[0].value
    row = table[table["name"] == "mnist5k-cnn"].iloc[0]
    assert row["origin"] == "bundled" and row["dataset"] == "mnist5k"


def import_file(content: bytes, name: str) -> AppTest:
    app = page("teachers")
    app.get("file_uploader")[0].set_value(("upload.pt", content, "application/octet-stream"))
    app.text_input(key="teacher_import_name").set_value(name).run()  # the Import button enables once a file is in
    return app.button(key="teacher_import").click().run()


class PickledCode:
    """Unpickling this would run a shell command: the safe loader must refuse it."""

    def __reduce__(self) -> tuple:
        return (os.system, ("echo this must never run",))


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (pickle.dumps(PickledCode(), protocol=2), "evil", "refused by the safe loader"),
        (b"", "empty", "checkpoint 'upload.pt' is empty"),
        ((BUNDLED_DIR / "mnist5k-cnn.pt").read_bytes(), "../escape", "is not allowed"),
        # Random bytes: teachers.read_checkpoint lets torch's IndexError through, so only the generic message shows.
        (b"this is not a checkpoint at all", "junk", ""),
    ],
    ids=["pickled-code", "empty-file", "unsafe-name", "random-bytes"],
)
def test_bad_upload_is_refused_with_an_error(home: Path, content: bytes, name: str, message: str) -> None:
    app = import_file(content, name)
    assert not app.exception and not app.success
    assert any(message in error.value for error in app.error)
    assert not any((home / "uploads").iterdir())  # the temporary copy is always removed
    assert not (home / "teachers" / f"{name}.pt").exists()


def test_good_upload_is_imported_and_listed(home: Path) -> None:
    app = import_file((BUNDLED_DIR / "mnist5k-cnn.pt").read_bytes(), "copied-cnn")
    assert not app.exception and not app.error
    assert "copied-cnn" in app.success[0].value
    assert "copied-cnn" in list(app.dataframe[0].value["name"])


def test_teacher_trains_in_the_background_and_joins_the_list(home: Path) -> None:
    app = page("teachers")
    app.selectbox(key="teacher_arch").set_value("cnn-small")
    app.number_input(key="teacher_epochs").set_value(1)
    app.text_input(key="teacher_name").set_value("tiny-teacher")
    app.button(key="FormSubmitter:teacher_form-Train teacher").click().run()
    assert not app.exception and not app.error
    app = run_until_finished(app, app.query_params["teacher_run"])
    assert "tiny-teacher" in app.success[0].value
    assert "tiny-teacher" in list(app.dataframe[0].value["name"])
    app.button(key="FormSubmitter:teacher_form-Train teacher").click().run()  # the same name again
    assert any("already exists" in error.value for error in app.error)
