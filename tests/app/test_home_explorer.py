"""AppTest checks of the Home page and the Temperature explorer, driven through their widgets like a user would.

The explorer's numbers are checked against an independent numpy softmax of the bundled teacher's logits. All
tests of this module share one temporary DISTILL_HOME, so the teacher's logits are computed once.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from distill_core.data import get_info, load_dataset
from distill_core.models import build_model
from distill_core.teachers import load_teacher, save_checkpoint, teacher_logits, teachers_dir

pytestmark = pytest.mark.app

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TABS = ("2 · The example at T", "3 · Entropy as T changes", "4 · The dataset at T", "5 · Loss anatomy")


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data directory for the module, so the teacher logits are computed only once."""
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path_factory.mktemp("distill_home")
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(autouse=True)
def home(module_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DISTILL_HOME", str(module_home))  # overrides the per-test home of tests/conftest.py
    return module_home


@pytest.fixture(scope="module")
def test_logits(module_home: Path) -> np.ndarray:
    """The bundled teacher's test logits (N, K), computed outside the app."""
    splits = load_dataset("mnist5k")
    return teacher_logits(load_teacher("mnist5k-cnn"), splits, "test", data_dir=module_home).numpy()


@pytest.fixture(scope="module")
def test_labels() -> np.ndarray:
    return load_dataset("mnist5k").test.labels.numpy()


def np_softmax(logits: np.ndarray, temp: float) -> np.ndarray:
    scaled = np.asarray(logits, dtype=np.float64) / temp
    exps = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return exps / exps.sum(axis=-1, keepdims=True)


def explorer(**sidebar: str) -> AppTest:
    """A fresh session on the explorer. After switch_page, AppTest runs the page without app.py's sidebar,
    so sidebar choices (dataset, teacher) are passed as session state, where the sidebar would put them."""
    app = AppTest.from_file(APP, default_timeout=90)
    for key, value in sidebar.items():
        app.session_state[key] = value
    app.switch_page("views/explorer.py")
    return app.run()


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [item.value for item in app.exception]
    assert not app.error, [item.value for item in app.error]


def figures(app: AppTest) -> dict[str, dict]:
    """The plotly charts on screen, by title (their JSON spec, as the browser receives it)."""
    specs = [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def shown_example(app: AppTest) -> str:
    """The title of the example's image, e.g. "test example #12, labelled 3"."""
    titles = [title for title in figures(app) if title.startswith(("test example", "your image"))]
    assert len(titles) == 1, titles
    return titles[0]


def teacher_bars(app: AppTest, temp: float) -> np.ndarray:
    """Heights of the "teacher, T = temp" bars of the soft-targets chart."""
    spec = next(spec for title, spec in figures(app).items() if title.startswith("Soft targets at T"))
    trace = next(trace for trace in spec["data"] if trace["name"] == f"teacher, T = {temp:g}")
    return decode(trace["y"])


def decode(values: list | dict) -> np.ndarray:
    """Plotly writes numpy arrays to JSON as typed arrays ({"dtype", "bdata": base64}); lists stay lists."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).astype(float)
    return np.asarray(values, dtype=float)


# ---------------------------------------------------------------------------------------------------------
# Home
# ---------------------------------------------------------------------------------------------------------


def test_home_renders_in_english_and_in_spanish():
    app = AppTest.from_file(APP, default_timeout=90).run()
    assert_clean(app)
    assert "The teacher who hesitated" in [header.value for header in app.subheader]
    assert any("Platt" in block.value for block in app.markdown)
    assert len(app.get("page_link")) == 4

    app.radio(key="language").set_value("es").run()
    assert_clean(app)
    headers = [header.value for header in app.subheader]
    assert "La profesora que dudó" in headers and "Pruébalo en 2 minutos" in headers
    assert any("Esa duda es el conocimiento" in block.value for block in app.markdown)
    assert not any("The teacher who hesitated" in header for header in headers)


# ---------------------------------------------------------------------------------------------------------
# Explorer
# ---------------------------------------------------------------------------------------------------------


def test_explorer_renders_every_tab():
    app = explorer()
    assert_clean(app)
    expected = {
        TABS[0]: ("test example #0", "Soft targets at T = 1"),
        TABS[1]: ("Entropy of the soft targets", "Softmax as the temperature T changes"),
        TABS[2]: ("Mean entropy", "Dark knowledge at T = 1", "Same entropy"),
        TABS[3]: ("Soft-loss gradient per class at T = 1", "At high T, distillation becomes logit matching"),
    }
    for tab, starts in expected.items():
        app.session_state["explorer_tab"] = tab
        app.run()
        assert_clean(app)
        titles = list(figures(app))
        assert len(titles) == len(starts), titles  # only the open tab is drawn
        for start in starts:
            assert any(title.startswith(start) for title in titles), (start, titles)
        assert len(app.dataframe) == (tab == TABS[2])  # the similar-pairs table


def test_temperature_slider_changes_the_soft_targets(test_logits):
    app = explorer()
    at_1 = teacher_bars(app, 1.0)
    np.testing.assert_allclose(at_1, np_softmax(test_logits[0], 1.0), atol=1e-6)

    app.select_slider(key="temperature").set_value(20.0).run()
    assert_clean(app)
    at_20 = teacher_bars(app, 20.0)
    np.testing.assert_allclose(at_20, np_softmax(test_logits[0], 20.0), atol=1e-6)
    assert np.abs(at_20 - at_1).max() > 0.1  # the bars really moved
    assert at_20.max() < at_1.max()  # and flattened


def test_picking_a_class_shows_the_nth_example_of_that_class(test_labels):
    app = explorer()
    app.selectbox(key="explorer_class").set_value(3).run()
    app.number_input(key="explorer_nth").set_value(2).run()
    assert_clean(app)
    second_three = int(np.flatnonzero(test_labels == 3)[1])
    assert shown_example(app) == f"test example #{second_three}, labelled 3"


def test_most_ambiguous_lists_the_highest_entropy_examples(test_logits):
    app = explorer()
    probs = np_softmax(test_logits, 1.0)
    entropies = -(probs * np.log(np.clip(probs, 1e-300, None))).sum(axis=1)
    radio = app.radio(key="explorer_ambiguous")
    expected = np.argsort(-entropies)[:10].tolist()
    assert [int(option.split(":")[0].lstrip("#")) for option in radio.options] == expected
    first = radio.options[0]
    assert first.endswith(f"the teacher says {probs[expected[0]].argmax()}"), first

    radio.set_value(expected[0]).run()
    assert_clean(app)
    assert shown_example(app).startswith(f"test example #{expected[0]},")


def test_number_and_random_picks_change_the_example():
    app = explorer()
    app.number_input(key="explorer_index").set_value(42).run()
    assert shown_example(app).startswith("test example #42,")
    app.button(key="explorer_random").click().run()
    assert_clean(app)
    assert not shown_example(app).startswith("test example #42,")


def png_of_a_stroke() -> bytes:
    image = Image.new("L", (64, 64), color=255)
    ImageDraw.Draw(image).line([(32, 8), (32, 56)], fill=0, width=6)  # a dark "1" on white paper
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploading_an_image_makes_it_the_example():
    app = explorer()
    app.file_uploader(key="explorer_upload").set_value(("one.png", png_of_a_stroke(), "image/png")).run()
    assert_clean(app)
    assert shown_example(app) == "your image one.png, no label (your image)"
    assert app.select_slider(key="temperature").set_value(8.0).run()
    assert_clean(app)


def test_a_broken_upload_is_a_friendly_error():
    app = explorer()
    app.file_uploader(key="explorer_upload").set_value(("broken.png", b"not a picture", "image/png")).run()
    assert not app.exception
    assert [item.value for item in app.error][0].startswith("Reading your image:")
    assert shown_example(app).startswith("test example #0,")  # the previous example stays


def test_a_dataset_without_a_teacher_points_to_the_teachers_page():
    app = explorer(dataset="kmnist")
    assert not app.exception
    assert any("no teacher" in item.value for item in app.info)
    assert not app.get("plotly_chart")


def test_a_dataset_that_is_not_downloaded_is_a_friendly_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path))
    info = get_info("mnist")
    metadata = {"name": "mnist-untrained", "dataset": "mnist", "architecture": "cnn-small"}
    save_checkpoint(teachers_dir() / "mnist-untrained.pt", build_model("cnn-small", info), metadata)
    app = explorer(dataset="mnist", teacher="mnist-untrained")
    assert not app.exception
    errors = [item.value for item in app.error]
    assert errors and errors[0].startswith("Loading mnist with teacher mnist-untrained:")


def test_explorer_in_spanish_keeps_working_and_keeps_the_open_tab(test_logits):
    app = explorer()
    app.session_state["explorer_tab"] = TABS[3]
    app.run()
    app.radio(key="language").set_value("es").run()
    assert_clean(app)
    assert [title.value for title in app.title] == ["Explorador de temperatura"]
    assert app.session_state["explorer_tab"] == "5 · Anatomía de la pérdida"  # the same tab, in Spanish
    assert app.selectbox(key="explorer_student").label == "Estudiante"

    app.session_state["explorer_tab"] = "2 · El ejemplo con T"
    app.select_slider(key="temperature").set_value(8.0).run()
    assert_clean(app)
    assert app.select_slider(key="temperature").label.startswith("Temperatura T")
    np.testing.assert_allclose(teacher_bars(app, 8.0), np_softmax(test_logits[0], 8.0), atol=1e-6)
    assert any(block.value.startswith("Con T = 8 el maestro responde") for block in app.markdown)
    assert not any("the teacher answers" in block.value for block in app.markdown)
