"""The sidebar shared by every page: dataset, teacher and language."""

from __future__ import annotations

import streamlit as st

from distill_core.data import DATASETS, DEFAULT_DATASET
from distill_core.teachers import default_teacher, list_teachers
from ui.i18n import LANGUAGES, label


def render_sidebar() -> None:
    """Draw the shared pickers; the choices live in st.session_state for every page to read."""
    with st.sidebar:
        st.radio(
            "Language / Idioma",
            options=list(LANGUAGES),
            format_func=LANGUAGES.get,
            key="language",
            horizontal=True,
        )
        names = list(DATASETS)
        st.selectbox(
            label("dataset"),
            options=names,
            index=names.index(st.session_state.get("dataset", DEFAULT_DATASET)),
            format_func=lambda name: f"{name} — {DATASETS[name].description}",
            key="dataset",
            help="mnist5k ships with the app. The others must be downloaded first: "
            "`python -m distill_core data download NAME`.",
        )
        teachers = [info.name for info in list_teachers(dataset=st.session_state["dataset"])]
        if not teachers:
            st.session_state["teacher"] = ""
            st.warning(label("no_teacher"))
            return
        current = st.session_state.get("teacher")
        if current not in teachers:
            current = _preferred(st.session_state["dataset"], teachers)
        st.selectbox(label("teacher"), options=teachers, index=teachers.index(current), key="teacher")


def _preferred(dataset: str, teachers: list[str]) -> str:
    try:
        name = default_teacher(dataset)
    except ValueError:
        return teachers[0]
    return name if name in teachers else teachers[0]
