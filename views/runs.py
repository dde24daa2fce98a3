"""Runs: every stored pair run in one table; compare the selected ones, download them, or delete them."""

import streamlit as st

from distill_core import reports, runs, viz
from distill_core.data import DATASETS
from distill_core.store import TERMINAL_STATUSES
from ui import live
from ui.errors import friendly_errors
from ui.i18n import language
from ui.resources import store_or_stop

METRICS = [
    "distilled_test_accuracy",
    "baseline_test_accuracy",
    "distilled_val_accuracy",
    "baseline_val_accuracy",
    "distilled_total_loss",
    "distilled_soft_loss",
    "distilled_hard_loss",
    "baseline_hard_loss",
]

TEXT = {
    "en": {
        "title": "Runs",
        "intro": "Every paired run this server has recorded. Tick rows to compare their curves and per-class "
        "accuracy, download them, or delete them. Accuracies are on the test split after the last epoch.",
        "delete_failed": "Could not delete",
        "deleted": "Deleted {count} run(s).",
        "kept": " Runs still queued or running were kept: stop them first.",
        "no_runs": "No runs yet. Start one on the Train page; it will appear here.",
        "select": "Select one or more rows (the boxes on the left) to compare, download or delete them.",
        "selected": "{count} run(s) selected",
        "curve": "Curve to compare",
        "metrics": {key: key.replace("_", " ") for key in METRICS},
        "per_class_of": "Per-class accuracy of",
        "students": {"distilled": "distilled", "baseline": "baseline"},
        "mixed_datasets": "These runs use different datasets, so their classes cannot share one chart.",
        "download_failed": "Could not prepare the download",
        "csv": "Download CSV (one row per epoch)",
        "json": "Download JSON (full reports)",
        "delete_header": "Delete the selected runs",
        "confirm": "I understand that {count} run(s) and their history are deleted for good",
        "delete": "Delete",
    },
    "es": {
        "title": "Ejecuciones",
        "intro": "Todas las ejecuciones en pareja que registró este servidor. Marca filas para comparar sus curvas y "
        "su exactitud por clase, descargarlas o borrarlas. Las exactitudes son en la partición de prueba, tras la "
        "última época.",
        "delete_failed": "No se pudo borrar",
        "deleted": "Ejecuciones borradas: {count}.",
        "kept": " Las que seguían en cola o en curso se conservaron: detenlas primero.",
        "no_runs": "Aún no hay ejecuciones. Inicia una en la página Entrenar y aparecerá aquí.",
        "select": "Selecciona una o más filas (las casillas de la izquierda) para compararlas, descargarlas o "
        "borrarlas.",
        "selected": "Ejecuciones seleccionadas: {count}",
        "curve": "Curva a comparar",
        "metrics": {
            "distilled_test_accuracy": "destilado: exactitud en prueba",
            "baseline_test_accuracy": "base: exactitud en prueba",
            "distilled_val_accuracy": "destilado: exactitud en validación",
            "baseline_val_accuracy": "base: exactitud en validación",
            "distilled_total_loss": "destilado: pérdida total",
            "distilled_soft_loss": "destilado: pérdida suave (maestro)",
            "distilled_hard_loss": "destilado: pérdida dura (etiquetas)",
            "baseline_hard_loss": "base: pérdida dura (etiquetas)",
        },
        "per_class_of": "Exactitud por clase del",
        "students": {"distilled": "estudiante destilado", "baseline": "estudiante base"},
        "mixed_datasets": "Estas ejecuciones usan conjuntos de datos distintos, así que sus clases no caben en un "
        "mismo gráfico.",
        "download_failed": "No se pudo preparar la descarga",
        "csv": "Descargar CSV (una fila por época)",
        "json": "Descargar JSON (informes completos)",
        "delete_header": "Borrar las ejecuciones seleccionadas",
        "confirm": "Entiendo que {count} ejecución(es) y su historial se borrarán para siempre",
        "delete": "Borrar",
    },
}
text = TEXT[language()]

st.title(text["title"])
st.caption(text["intro"])
store = store_or_stop()


def delete_selected(run_ids: list[str]) -> None:
    """Delete the finished runs among `run_ids`; live ones must be stopped first so no worker writes to a ghost."""
    finished = [run_id for run_id in run_ids if (r := store.get_run(run_id)) and r.status in TERMINAL_STATUSES]
    with friendly_errors(text["delete_failed"]):
        deleted = sum(runs.delete_run(store, run_id) for run_id in finished)
        st.session_state["runs_message"] = text["deleted"].format(count=deleted)
        if len(finished) < len(run_ids):
            st.session_state["runs_message"] += text["kept"]
    st.session_state["runs_confirm"] = False
    st.session_state.pop("runs_table", None)  # the deleted rows must not stay selected


if message := st.session_state.pop("runs_message", None):
    st.success(message)
records = [record for record in store.list_runs(limit=500) if record.kind == "pair"]
if not records:
    st.info(text["no_runs"])
    st.stop()

event = live.runs_dataframe(records, on_select="rerun", selection_mode="multi-row", key="runs_table")
chosen = [records[row] for row in event.selection.rows if row < len(records)]  # rows may vanish meanwhile
if not chosen:
    st.caption(text["select"])
    st.stop()

st.subheader(text["selected"].format(count=len(chosen)))
labelled = [(reports.run_label(record), record) for record in chosen]
metric = st.selectbox(text["curve"], METRICS, format_func=text["metrics"].get, key="runs_metric")
histories = [(label, store.history(record.run_id)) for label, record in labelled]
st.plotly_chart(viz.runs_overlay_figure(histories, metric), width="stretch")

student = st.radio(
    text["per_class_of"],
    ["distilled", "baseline"],
    format_func=text["students"].get,
    horizontal=True,
    key="runs_student",
)
with_metrics = [(label, r) for label, r in labelled if r.metrics.get(student, {}).get("per_class_accuracy")]
datasets = {record.config["dataset"] for _, record in with_metrics}
if len(datasets) > 1:
    st.info(text["mixed_datasets"])
elif with_metrics:
    per_class = [(label, record.metrics[student]["per_class_accuracy"]) for label, record in with_metrics]
    st.plotly_chart(viz.runs_per_class_figure(per_class, DATASETS[datasets.pop()].class_names), width="stretch")

run_ids = [record.run_id for record in chosen]
csv_column, json_column = st.columns(2)
with friendly_errors(text["download_failed"]):
    csv_column.download_button(
        text["csv"],
        reports.export_runs(store, run_ids, "csv"),
        file_name="distill-runs.csv",
        mime="text/csv",
        key="runs_csv",
    )
    json_column.download_button(
        text["json"],
        reports.export_runs(store, run_ids, "json"),
        file_name="distill-runs.json",
        mime="application/json",
        key="runs_json",
    )

with st.expander(text["delete_header"]):
    sure = st.checkbox(text["confirm"].format(count=len(chosen)), key="runs_confirm")
    st.button(
        text["delete"], type="primary", disabled=not sure, key="runs_delete", on_click=delete_selected, args=(run_ids,)
    )
