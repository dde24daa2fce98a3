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
from ui.i18n import language
from ui.resources import job_manager, run_store
from ui.state import session_owner

TEXT = {
    "en": {
        "title": "Teachers",
        "intro": "The teacher is the big model whose soft targets the student learns from. A better-calibrated, more "
        "accurate teacher has more useful 'dark knowledge' to pass on.",
        "columns": {
            "name": "name",
            "origin": "origin",
            "dataset": "dataset",
            "architecture": "architecture",
            "test accuracy %": "test accuracy %",
            "size MB": "size MB",
            "parameters": "parameters",
        },
        "train_header": "Train a new teacher",
        "dataset": "Dataset",
        "architecture": "Architecture",
        "epochs": "Epochs",
        "seed": "Seed",
        "name": "Name (optional)",
        "name_placeholder": "e.g. mnist5k-cnn-long",
        "train": "Train teacher",
        "start_failed": "Could not start the teacher",
        "name_taken": "a teacher named {name!r} already exists; choose another name",
        "run_caption": "Teacher run {run_id} ({name}): **{status}**",
        "unnamed": "unnamed",
        "axes": {},  # English keeps the chart's own axis titles (the data's column names)
        "ready": "Teacher **{name}** is ready: {val} on validation, {test} on test. Pick it in the sidebar.",
        "import_header": "Import a checkpoint",
        "import_intro": "A .pt or .safetensors file with weights only. Nothing in it is executed: pickled code is "
        "refused, and the weights must fit a known architecture. Up to {limit} MB.",
        "too_big": "the file is {size:.0f} MB; the limit is {limit} MB",
        "checkpoint": "Checkpoint",
        "import_name": "Name for the imported teacher",
        "import_placeholder": "e.g. my-cnn",
        "bare": "Only for a bare state_dict (a file without our metadata)",
        "arch_placeholder": "e.g. cnn or mlp:1200-1200",
        "import": "Import",
        "import_failed": "Import refused",
        "imported": "Imported **{name}** for {dataset}: pick it in the sidebar.",
    },
    "es": {
        "title": "Maestros",
        "intro": "El maestro es el modelo grande de cuyos objetivos suaves aprende el estudiante. Un maestro más "
        "preciso y mejor calibrado tiene más “conocimiento oscuro” útil para transmitir.",
        "columns": {
            "name": "nombre",
            "origin": "origen",
            "dataset": "conjunto de datos",
            "architecture": "arquitectura",
            "test accuracy %": "exactitud en prueba %",
            "size MB": "tamaño MB",
            "parameters": "parámetros",
        },
        "train_header": "Entrena un maestro nuevo",
        "dataset": "Conjunto de datos",
        "architecture": "Arquitectura",
        "epochs": "Épocas",
        "seed": "Semilla",
        "name": "Nombre (opcional)",
        "name_placeholder": "p. ej. mnist5k-cnn-largo",
        "train": "Entrenar maestro",
        "start_failed": "No se pudo iniciar el entrenamiento del maestro",
        "name_taken": "ya existe un maestro llamado {name!r}; elige otro nombre",
        "run_caption": "Ejecución del maestro {run_id} ({name}): **{status}**",
        "unnamed": "sin nombre",
        "axes": {"x_label": "época", "y_label": "exactitud en validación %"},
        "ready": "El maestro **{name}** está listo: {val} en validación y {test} en prueba. Elígelo en la barra "
        "lateral.",
        "import_header": "Importa un checkpoint",
        "import_intro": "Un archivo .pt o .safetensors que contenga solo pesos. No se ejecuta nada de su contenido: "
        "se rechaza el código serializado con pickle, y los pesos deben encajar en una arquitectura conocida. "
        "Hasta {limit} MB.",
        "too_big": "el archivo pesa {size:.0f} MB; el límite es {limit} MB",
        "checkpoint": "Checkpoint",
        "import_name": "Nombre del maestro importado",
        "import_placeholder": "p. ej. mi-cnn",
        "bare": "Solo para un state_dict simple (un archivo sin nuestros metadatos)",
        "arch_placeholder": "p. ej. cnn o mlp:1200-1200",
        "import": "Importar",
        "import_failed": "Importación rechazada",
        "imported": "Se importó **{name}** para {dataset}: elígelo en la barra lateral.",
    },
}
text = TEXT[language()]
headers = text["columns"]

st.title(text["title"])
st.caption(text["intro"])
if message := st.session_state.pop("teachers_message", None):
    st.success(message)
teachers = list_teachers()
st.dataframe(
    pd.DataFrame(reports.teacher_rows(teachers)),
    hide_index=True,
    column_config={
        # The data keeps the library's column names; only the headers shown follow the language.
        "name": headers["name"],
        "origin": headers["origin"],
        "dataset": headers["dataset"],
        "architecture": headers["architecture"],
        "test accuracy %": st.column_config.NumberColumn(headers["test accuracy %"], format="%.1f"),
        "size MB": st.column_config.NumberColumn(headers["size MB"], format="%.2f"),
        "parameters": st.column_config.NumberColumn(headers["parameters"], format="localized"),
    },
)

st.subheader(text["train_header"])
with st.form("teacher_form"):
    left, right = st.columns(2)
    dataset = left.selectbox(text["dataset"], list(DATASETS), key="teacher_dataset")
    architecture = right.selectbox(text["architecture"], ["cnn", "mlp:1200-1200", "cnn-small"], key="teacher_arch")
    epochs = left.number_input(text["epochs"], 1, max_epochs(), value=TeacherConfig.epochs, key="teacher_epochs")
    seed = right.number_input(text["seed"], 0, 2**31 - 1, value=0, key="teacher_seed")
    name = st.text_input(text["name"], key="teacher_name", placeholder=text["name_placeholder"])
    start = st.form_submit_button(text["train"], type="primary")
if start:
    with friendly_errors(text["start_failed"]):
        config = TeacherConfig(dataset=dataset, name=name.strip(), architecture=architecture, epochs=epochs, seed=seed)
        if config.resolved_name in {info.name for info in teachers}:
            raise ValueError(text["name_taken"].format(name=config.resolved_name))
        st.query_params["teacher_run"] = job_manager().submit("teacher", config.to_dict(), owner=session_owner())


def show_teacher_run(records: list[RunRecord]) -> None:
    """Progress (validation accuracy per epoch) of the teacher run in the URL, and its result."""
    record = records[0]
    history = run_store().history(record.run_id)
    teacher_name = record.config.get("name") or text["unnamed"]
    st.caption(
        text["run_caption"].format(run_id=record.run_id, name=teacher_name, status=live.status_label(record.status))
    )
    live.show_progress(record, history)
    live.show_ending(record)
    if history:
        rows = pd.DataFrame(reports.teacher_history_rows(history))
        st.line_chart(rows, x="epoch", y="val accuracy %", **text["axes"])
    if record.status == "completed":
        metrics = record.metrics
        val, test = live.percent(metrics["val_accuracy"]), live.percent(metrics["test_accuracy"])
        st.success(text["ready"].format(name=metrics["name"], val=val, test=test))


if run_ids := live.url_run_ids("teacher_run"):
    live.follow(run_ids[:1], show_teacher_run)

st.subheader(text["import_header"])
# The smaller of our own checkpoint limit and the server's upload limit (server.maxUploadSize, in MB).
upload_limit = min(MAX_CHECKPOINT_BYTES, st.get_option("server.maxUploadSize") * 2**20)
st.caption(text["import_intro"].format(limit=upload_limit // 2**20))


def import_upload(upload: UploadedFile, name: str, architecture: str, dataset: str) -> TeacherInfo:
    """Copy the upload to a temp file with a generated name, import it as teacher `name`, always remove the copy."""
    validate_name(name)
    if upload.size > upload_limit:
        raise ValueError(text["too_big"].format(size=upload.size / 2**20, limit=upload_limit // 2**20))
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


upload = st.file_uploader(text["checkpoint"], type=["pt", "safetensors"], key="teacher_upload")
import_name = st.text_input(text["import_name"], key="teacher_import_name", placeholder=text["import_placeholder"])
with st.expander(text["bare"]):
    import_arch = st.text_input(text["architecture"], key="teacher_import_arch", placeholder=text["arch_placeholder"])
    import_dataset = st.selectbox(text["dataset"], ["", *DATASETS], key="teacher_import_dataset")
if st.button(text["import"], key="teacher_import", disabled=upload is None):
    with friendly_errors(text["import_failed"]):
        imported = import_upload(upload, import_name.strip(), import_arch.strip(), import_dataset)
        st.session_state["teachers_message"] = text["imported"].format(name=imported.name, dataset=imported.dataset)
        st.rerun()  # redraw the table above and the sidebar's teacher list with the new teacher
