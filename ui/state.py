"""Per-browser-session state: the chosen dataset and teacher, and an owner id for the session's runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import streamlit as st

from distill_core.data import DEFAULT_DATASET
from distill_core.teachers import default_teacher


@dataclass(frozen=True)
class Selection:
    dataset: str
    teacher: str


def selection() -> Selection:
    """The sidebar's choice, or the defaults when a page runs on its own (as in a test)."""
    dataset = st.session_state.get("dataset", DEFAULT_DATASET)
    teacher = st.session_state.get("teacher")
    if teacher is None:
        try:
            teacher = default_teacher(dataset)
        except ValueError:  # no teacher for this dataset yet: pages show how to train one
            teacher = ""
    return Selection(dataset, teacher)


def session_owner() -> str:
    """A random id for this browser session, so its runs are listed first."""
    if "owner" not in st.session_state:
        st.session_state["owner"] = uuid.uuid4().hex[:12]
    return st.session_state["owner"]
