"""Teachers: the ones available, training a new one in the background, and importing a checkpoint safely."""

import uuid

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from distill_core import reports
from distill_core.data import DATASETS
from distill_core.paths import subdir
from distill_core.store import RunRecord
from distill_core.teacher_training import TeacherConfig
from distill_core.teachers import MAX_CHECKPOINT_BYTES, TeacherInfo, import_teacher, list_teachers, validate_name
from distill_core.training import max_epochs
from ui import live
from ui.errors import friendly_errors
from ui.resources import job_manager, run_store
from ui.state import session_owner

st.title("Teachers")
st.caption(
    "The teacher is the big model whose soft targets the student learns from. A better-calibrated, more accurate "
    "teacher has more useful 'dark knowledge' to pass on."
)
if message := st.session_state.pop("teachers_message", None):
    st.success(message)
teachers = list_teachers()
st.dataframe(
    pd.DataFrame(reports.teacher_rows(teachers)),
    hide_index=True,
    column_config={
        "test accuracy %": st.column_config.NumberColumn(format="%.1f"),
        "size MB": st.column_config.NumberColumn(format="%.2f"),
        "parameters": st.column_config.NumberColumn(format="localized"),
    },
)

st.subheader("Train a new teacher")
with st.form("teacher_form"):
    left, right = st.columns(2)
    dataset = left.selectbox("Dataset", list(DATASETS), key="teacher_dataset")
    architecture = right.selectbox("Architecture", ["cnn", "mlp:1200-1200", "cnn-small"], key="teacher_arch")
    epochs = left.number_input("Epochs", 1, max_epochs(), value=TeacherConfig.epochs, key="teacher_epochs")
    seed = right.number_input("Seed", 0, 2**31 - 1, value=0, key="teacher_seed")
    name = st.text_input("Name (optional)", key="teacher_name", placeholder="e.g. mnist5k-cnn-long")
    start = st.form_submit_button("Train teacher", type="primary")
if start:
    with friendly_errors("Could not start the teacher"):
        config = TeacherConfig(dataset=dataset, name=name.strip(), architecture=architecture, epochs=epochs, seed=seed)
        if config.resolved_name in {info.name for info in teachers}:
            raise ValueError(f"a teacher named {config.resolved_name!r} already exists; choose another name")
        st.query_params["teacher_run"] = job_manager().submit("teacher", config.to_dict(), owner=session_owner())


def show_teacher_run(records: list[RunRecord]) -> None:
    """Progress (validation accuracy per epoch) of the teacher run in the URL, and its result."""
    record = records[0]
    history = run_store().history(record.run_id)
    st.caption(f"Teacher run {record.run_id} ({record.config.get('name') or 'unnamed'}): **{record.status}**")
    live.show_progress(record, history)
    live.show_ending(record)
    if history:
        st.line_chart(pd.DataFrame(reports.teacher_history_rows(history)), x="epoch", y="val accuracy %")
    if record.status == "completed":
        metrics = record.metrics
        st.success(
            f"Teacher **{metrics['name']}** is ready: {live.percent(metrics['val_accuracy'])} on validation, "
            f"{live.percent(metrics['test_accuracy'])} on test. Pick it in the sidebar."
        )


if run_ids := live.url_run_ids("teacher_run"):
    live.follow(run_ids[:1], show_teacher_run)

st.subheader("Import a checkpoint")
# The smaller of our own checkpoint limit and the server's upload limit (server.maxUploadSize, in MB).
upload_limit = min(MAX_CHECKPOINT_BYTES, st.get_option("server.maxUploadSize") * 2**20)
st.caption(
    "A .pt or .safetensors file with weights only. Nothing in it is executed: pickled code is refused, and the "
    f"weights must fit a known architecture. Up to {upload_limit // 2**20} MB."
)


def import_upload(upload: UploadedFile, name: str, architecture: str, dataset: str) -> TeacherInfo:
    """Copy the upload to a temp file with a generated name, import it as teacher `name`, always remove the copy."""
    validate_name(name)
    if upload.size > upload_limit:
        raise ValueError(f"the file is {upload.size / 2**20:.0f} MB; the limit is {upload_limit // 2**20} MB")
    # Only our own name touches the disk: the user's file name could hold a path or odd characters.
    temporary = subdir("uploads") / f"{uuid.uuid4().hex}.upload"
    try:
        temporary.write_bytes(upload.getvalue())
        return import_teacher(temporary, name, architecture=architecture or None, dataset=dataset or None)
    except ValueError as error:
        # The reason names our temporary file; the user knows the file by the name they uploaded.
        raise ValueError(str(error).replace(temporary.name, upload.name)) from None
    finally:
        temporary.unlink(missing_ok=True)


upload = st.file_uploader("Checkpoint", type=["pt", "safetensors"], key="teacher_upload")
import_name = st.text_input("Name for the imported teacher", key="teacher_import_name", placeholder="e.g. my-cnn")
with st.expander("Only for a bare state_dict (a file without our metadata)"):
    import_arch = st.text_input("Architecture", key="teacher_import_arch", placeholder="e.g. cnn or mlp:1200-1200")
    import_dataset = st.selectbox("Dataset", ["", *DATASETS], key="teacher_import_dataset")
if st.button("Import", key="teacher_import", disabled=upload is None):
    with friendly_errors("Import refused"):
        imported = import_upload(upload, import_name.strip(), import_arch.strip(), import_dataset)
        st.session_state["teachers_message"] = (
            f"Imported **{imported.name}** for {imported.dataset}: pick it in the sidebar."
        )
        st.rerun()  # redraw the table above and the sidebar's teacher list with the new teacher
