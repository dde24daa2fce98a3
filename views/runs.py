"""Runs: every stored pair run in one table; compare the selected ones, download them, or delete them."""

import pandas as pd
import streamlit as st

from distill_core import reports, runs, viz
from distill_core.data import DATASETS
from distill_core.store import TERMINAL_STATUSES
from ui.errors import friendly_errors
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

st.title("Runs")
st.caption(
    "Every paired run this server has recorded. Tick rows to compare their curves and per-class accuracy, "
    "download them, or delete them. Accuracies are on the test split after the last epoch."
)
store = store_or_stop()


def delete_selected(run_ids: list[str]) -> None:
    """Delete the finished runs among `run_ids`; live ones must be stopped first so no worker writes to a ghost."""
    finished = [run_id for run_id in run_ids if (r := store.get_run(run_id)) and r.status in TERMINAL_STATUSES]
    with friendly_errors("Could not delete"):
        deleted = sum(runs.delete_run(store, run_id) for run_id in finished)
        st.session_state["runs_message"] = f"Deleted {deleted} run(s)."
        if len(finished) < len(run_ids):
            st.session_state["runs_message"] += " Runs still queued or running were kept: stop them first."
    st.session_state["runs_confirm"] = False
    st.session_state.pop("runs_table", None)  # the deleted rows must not stay selected


if message := st.session_state.pop("runs_message", None):
    st.success(message)
records = [record for record in store.list_runs(limit=500) if record.kind == "pair"]
if not records:
    st.info("No runs yet. Start one on the Train page; it will appear here.")
    st.stop()

table = pd.DataFrame(reports.runs_table(records))
event = st.dataframe(
    table,
    hide_index=True,
    on_select="rerun",
    selection_mode="multi-row",
    key="runs_table",
    column_config={
        "baseline %": st.column_config.NumberColumn(format="%.1f"),
        "distilled %": st.column_config.NumberColumn(format="%.1f"),
        "gain (points)": st.column_config.NumberColumn(format="%+.2f"),
    },
)
chosen = [records[row] for row in event.selection.rows if row < len(records)]  # rows may vanish meanwhile
if not chosen:
    st.caption("Select one or more rows (the boxes on the left) to compare, download or delete them.")
    st.stop()

st.subheader(f"{len(chosen)} run(s) selected")
labelled = [(reports.run_label(record), record) for record in chosen]
metric = st.selectbox("Curve to compare", METRICS, format_func=lambda key: key.replace("_", " "), key="runs_metric")
histories = [(label, store.history(record.run_id)) for label, record in labelled]
st.plotly_chart(viz.runs_overlay_figure(histories, metric), width="stretch")

student = st.radio("Per-class accuracy of", ["distilled", "baseline"], horizontal=True, key="runs_student")
with_metrics = [(label, r) for label, r in labelled if r.metrics.get(student, {}).get("per_class_accuracy")]
datasets = {record.config["dataset"] for _, record in with_metrics}
if len(datasets) > 1:
    st.info("These runs use different datasets, so their classes cannot share one chart.")
elif with_metrics:
    per_class = [(label, record.metrics[student]["per_class_accuracy"]) for label, record in with_metrics]
    st.plotly_chart(viz.runs_per_class_figure(per_class, DATASETS[datasets.pop()].class_names), width="stretch")

run_ids = [record.run_id for record in chosen]
csv_column, json_column = st.columns(2)
with friendly_errors("Could not prepare the download"):
    csv_column.download_button(
        "Download CSV (one row per epoch)",
        reports.export_runs(store, run_ids, "csv"),
        file_name="distill-runs.csv",
        mime="text/csv",
        key="runs_csv",
    )
    json_column.download_button(
        "Download JSON (full reports)",
        reports.export_runs(store, run_ids, "json"),
        file_name="distill-runs.json",
        mime="application/json",
        key="runs_json",
    )

with st.expander("Delete the selected runs"):
    sure = st.checkbox(
        f"I understand that {len(chosen)} run(s) and their history are deleted for good", key="runs_confirm"
    )
    st.button("Delete", type="primary", disabled=not sure, key="runs_delete", on_click=delete_selected, args=(run_ids,))
