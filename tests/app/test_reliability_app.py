"""The app under faults: a store it cannot write, and runs that ended badly. Each page says what happened with
st.error or st.warning, and never shows an exception."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from distill_core.store import RunStore
from distill_core.training import TrainConfig

pytestmark = pytest.mark.app
APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture(autouse=True)
def fresh_caches(distill_home: Path) -> Iterator[None]:
    st.cache_resource.clear()  # the store and job manager are process-wide: rebuild them in this test's folder
    yield
    st.cache_resource.clear()


def open_page(name: str, **query: str) -> AppTest:
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.switch_page(f"views/{name}.py")
    return app.run()


def test_with_an_unusable_store_the_explorer_serves_and_train_says_why(distill_home):
    # A directory where the database file should be: SQLite can neither open nor create it.
    (distill_home / "runs.sqlite3").mkdir()
    explorer = open_page("explorer")
    assert not explorer.exception
    assert explorer.get("plotly_chart"), "the explorer should still draw its charts"
    train = open_page("train")
    assert not train.exception
    assert any("run store" in error.value for error in train.error), [e.value for e in train.error]


def _stored_run(status: str, error: str | None = None) -> str:
    store = RunStore()
    run_id = store.create_run(TrainConfig(student="mlp:16", epochs=3).to_dict(), owner="test")
    store.mark_running(run_id)
    store.append_event(run_id, {"epoch": 1.0, "step": 5, "baseline_hard_loss": 2.0, "distilled_hard_loss": 2.1,
                                "distilled_soft_loss": 1.0, "distilled_total_loss": 1.2,
                                "baseline_val_accuracy": 0.5, "baseline_test_accuracy": 0.5,
                                "distilled_val_accuracy": 0.6, "distilled_test_accuracy": 0.6})  # fmt: skip
    store.finish_run(run_id, status, metrics={}, timing={}, error=error)
    return run_id


def test_a_diverged_run_is_explained_and_its_history_still_drawn():
    run_id = _stored_run("diverged", "a loss became NaN or infinite; lower the learning rate")
    app = open_page("train", run=run_id)
    assert not app.exception
    assert any("learning rate" in error.value for error in app.error)
    assert app.get("plotly_chart")


@pytest.mark.parametrize("status", ["interrupted", "cancelled"])
def test_an_unfinished_run_shows_a_warning_and_its_partial_history(status):
    app = open_page("train", run=_stored_run(status))
    assert not app.exception
    assert app.warning and app.get("plotly_chart")


def test_an_unknown_run_id_in_the_url_is_a_clear_message_not_a_crash():
    app = open_page("train", run="doesnotexist")
    assert not app.exception
    assert app.error or app.warning or app.info


def test_loss_anatomy_can_ask_a_trained_student():
    from distill_core.runs import execute_pair_run

    store = RunStore()
    config = TrainConfig(student="mlp:16", epochs=1, batch_size=64, train_fraction=0.1).to_dict()
    run_id = store.create_run(config, owner="test")
    execute_pair_run(run_id, config, store, lambda: False)
    app = open_page("explorer")
    app.session_state["explorer_tab"] = "5 · Loss anatomy"  # only the open tab is drawn
    app.run()
    student = app.selectbox(key="explorer_student")
    assert student.options[0].startswith("untrained") and len(student.options) == 2
    untrained_chart = app.get("plotly_chart")[0].proto.spec
    student.select_index(1).run()
    assert not app.exception
    assert app.get("plotly_chart")[0].proto.spec != untrained_chart
    assert any(run_id in caption.value for caption in app.caption)
