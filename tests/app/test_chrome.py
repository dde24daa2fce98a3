"""The app's chrome follows the sidebar's language on every page, and the pages keep their URLs."""

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.app
APP = str(Path(__file__).resolve().parents[2] / "app.py")


@pytest.fixture(autouse=True)
def fresh_caches(distill_home):
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_choosing_spanish_translates_the_sidebar_and_keeps_the_page():
    app = AppTest.from_file(APP, default_timeout=60)
    app.switch_page("views/train.py")
    app.run()
    assert [box.label for box in app.sidebar.selectbox] == ["Dataset", "Teacher"]
    app.sidebar.radio(key="language").set_value("es").run()
    assert not app.exception
    assert [box.label for box in app.sidebar.selectbox] == ["Conjunto de datos", "Maestro"]
    assert app.title[0].value == "Entrena un estudiante"  # still on the Train page, now in Spanish


@pytest.mark.parametrize("view", ["train", "explorer"])
def test_a_dataset_without_a_teacher_says_so_instead_of_failing_later(view):
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state["dataset"] = "fashion-mnist"  # no teacher ships for it
    app.switch_page(f"views/{view}.py")
    app.run()
    assert not app.exception
    assert any("fashion-mnist" in w.value or "Teachers" in w.value for w in [*app.warning, *app.info])
