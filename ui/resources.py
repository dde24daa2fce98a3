"""Process-wide cached accessors: one store, one job manager, and loaded datasets and teachers.

`st.cache_resource` shares them across reruns and browser sessions, so moving a slider never reloads data or
recomputes teacher logits (those also have a disk cache inside distill_core).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from distill_core.data import DatasetSplits, load_dataset
from distill_core.jobs import JobManager, get_manager
from distill_core.runs import load_run_student
from distill_core.store import RunStore, StoreError
from distill_core.teachers import Teacher, load_teacher, teacher_logits


@st.cache_resource(show_spinner=False)
def run_store() -> RunStore:
    store = RunStore()
    store.recover_interrupted()  # runs left "running" by a server that died show as interrupted
    return store


def store_or_stop() -> RunStore:
    """The run store, or an st.error saying why it cannot be used and the end of this page's run.

    Not cached on failure, so the page works again as soon as the folder is fixed.
    """
    try:
        return run_store()
    except StoreError as error:
        st.error(f"Runs cannot be shown or started: {error}")
        st.stop()


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    return get_manager()


@st.cache_resource(show_spinner="Loading the dataset…")
def dataset(name: str) -> DatasetSplits:
    return load_dataset(name)


@dataclass
class LoadedTeacher:
    """A teacher with its logits for every split (CPU tensors, (N, K) each)."""

    teacher: Teacher
    logits: dict[str, torch.Tensor]


@st.cache_resource(show_spinner="Loading the teacher and its logits…", max_entries=8)
def teacher(name: str, dataset_name: str) -> LoadedTeacher:
    splits = dataset(dataset_name)
    loaded = load_teacher(name)
    logits = {split: teacher_logits(loaded, splits, split) for split in ("train", "val", "test")}
    return LoadedTeacher(loaded, logits)


@st.cache_resource(show_spinner="Loading the trained student…", max_entries=8)
def run_student(run_id: str) -> torch.nn.Module:
    return load_run_student(run_id)
