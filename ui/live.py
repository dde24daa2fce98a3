"""Following runs live: polling fragments, progress with ETA, and the results view of a finished pair run.

Training happens in the job manager's worker threads; these helpers only read the run store. A fragment re-polls
every POLL_SECONDS while a run is live and stops polling once every run it follows has ended, so an idle page
costs nothing. The run ids live in the URL (`?run=ID` or `?run=ID1,ID2` for several seeds), which is how a refresh
or a second tab finds the same runs.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from distill_core import reports, viz
from distill_core.data import DATASETS
from distill_core.store import TERMINAL_STATUSES, RunRecord
from distill_core.training import TrainConfig
from ui.resources import job_manager, run_store

POLL_SECONDS = 1.5

_ENDINGS = {
    "diverged": "The loss became NaN or infinite, so training stopped. Lower the learning rate "
    "(1e-3 is a safe start for Adam) and try again.",
    "cancelled": "This run was stopped before the end. What it recorded so far is shown below.",
    "interrupted": "The server stopped while this run was going, so it did not finish. "
    "What it recorded so far is shown below; start it again to get final numbers.",
}


def url_run_ids(param: str = "run") -> list[str]:
    """The run ids in the URL's `param` (comma separated), in order, without blanks or repeats."""
    raw = st.query_params.get(param, "")
    return list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def follow(run_ids: list[str], body: Callable[[list[RunRecord]], None]) -> None:
    """Draw `body(records)` now, and again every POLL_SECONDS (in a fragment) while any of the runs is live."""
    records = _records(run_ids)
    if not records:
        st.warning("That run no longer exists (it may have been deleted). Start a new one above.")
        return
    polling = _any_live(records)
    st.fragment(_poll, run_every=POLL_SECONDS if polling else None)(run_ids, body, polling)


def _poll(run_ids: list[str], body: Callable[[list[RunRecord]], None], polling: bool) -> None:
    records = _records(run_ids)
    if polling and not _any_live(records):
        st.rerun()  # a full rerun recreates the fragment without polling and refreshes the rest of the page
    body(records)


def _records(run_ids: list[str]) -> list[RunRecord]:
    store = run_store()
    return [record for run_id in run_ids if (record := store.get_run(run_id)) is not None]


def _any_live(records: list[RunRecord]) -> bool:
    return any(record.status not in TERMINAL_STATUSES for record in records)


def percent(fraction: float | None) -> str:
    """A fraction as '96.4%', or '–' when unknown."""
    return "–" if fraction is None else f"{100 * fraction:.1f}%"


def show_progress(record: RunRecord, history: list[dict]) -> None:
    """Queue position while waiting; a progress bar with an ETA and a Stop button while running."""
    if record.status not in ("queued", "running"):
        return
    status = job_manager().status(record.run_id)
    if status.state == "queued" and status.queue_position is not None:
        ahead = status.queue_position - 1 + job_manager().running_count()
        st.info(f"Waiting for a free worker: {ahead} run(s) ahead of this one.")
    elif record.status == "queued":
        st.info("Waiting for a free worker.")
    else:
        done = reports.progress(history)
        eta = "estimating time left…" if done.eta_seconds is None else f"about {done.eta_seconds:.0f} s left"
        st.progress(done.fraction, text=f"{100 * done.fraction:.0f}% · {done.elapsed_seconds:.0f} s so far · {eta}")
    if st.button("Stop this run", key=f"stop_{record.run_id}"):
        if not job_manager().cancel(record.run_id):
            st.warning("This run belongs to another server process; stop it there.")


def show_ending(record: RunRecord) -> None:
    """Explain a run that did not complete: failed (with its stored error), diverged, cancelled or interrupted."""
    if record.status == "failed":
        st.error(f"This run failed: {record.error or 'no reason was recorded'}. Check the settings and try again.")
    elif record.status == "diverged":
        st.error(_ENDINGS["diverged"])
    elif record.status in _ENDINGS:
        st.warning(_ENDINGS[record.status])


def show_pair_run(record: RunRecord) -> None:
    """One pair run: status, live charts, and the final comparison once it has metrics."""
    history = run_store().history(record.run_id)
    st.caption(f"Run {reports.run_label(record)} · status: **{record.status}**")
    show_progress(record, history)
    show_ending(record)
    accuracy_column, loss_column = st.columns(2)
    accuracy_column.plotly_chart(viz.accuracy_figure(history), width="stretch", key=f"acc_{record.run_id}")
    loss_column.plotly_chart(viz.loss_figure(history), width="stretch", key=f"loss_{record.run_id}")
    if reports.gain_points(record.metrics) is not None:
        show_results(record)


def show_results(record: RunRecord) -> None:
    """Final test accuracies with the gain, the bias-shift rescue, per-class accuracy, confusions and costs."""
    metrics, config = record.metrics, record.config
    class_names = DATASETS[config["dataset"]].class_names
    teacher, baseline, distilled = metrics["teacher"], metrics["baseline"], metrics["distilled"]
    gain = reports.gain_points(metrics)
    corrected = distilled.get("bias_corrected")
    st.subheader("Result")
    columns = st.columns(4 if corrected else 3)
    columns[0].metric(f"Teacher ({teacher.get('name')})", percent(teacher.get("test_accuracy")))
    columns[1].metric("Baseline (labels only)", percent(baseline["test_accuracy"]))
    columns[2].metric("Distilled (soft targets)", percent(distilled["test_accuracy"]), delta=f"{gain:+.2f} points")
    if corrected:
        delta = 100 * (corrected["test_accuracy"] - distilled["test_accuracy"])
        columns[3].metric("Distilled + bias shift", percent(corrected["test_accuracy"]), delta=f"{delta:+.2f} points")
    when = "after the last epoch, never the best one" if record.status == "completed" else "where the run stopped"
    st.caption(
        f"Test accuracy {when}. Both students started from the same weights and saw the same batches; only the loss "
        "differed, so the gain is what the teacher's soft targets added."
    )
    if corrected:
        _explain_bias_shift(corrected["class_bias"], config)
    unseen = TrainConfig.from_dict(config).unseen_classes
    per_class = viz.per_class_accuracy_figure(
        class_names,
        baseline["per_class_accuracy"],
        distilled["per_class_accuracy"],
        corrected["per_class_accuracy"] if corrected else None,
        highlight_classes=unseen,
    )
    st.plotly_chart(per_class, width="stretch", key=f"per_class_{record.run_id}")
    left, right = st.columns(2)
    for column, name, student in ((left, "Baseline", baseline), (right, "Distilled", distilled)):
        figure = viz.confusion_figure(student["confusion_matrix"], class_names, title=f"{name}: confusion matrix")
        column.plotly_chart(figure, width="stretch", key=f"confusion_{name}_{record.run_id}")
    st.markdown(
        "**Size and speed** (batched inference on this server): distillation pays off when the student is smaller "
        "or faster than the teacher yet keeps most of its accuracy."
    )
    st.dataframe(pd.DataFrame(reports.model_cost_rows(metrics)), hide_index=True, column_config=_COST_COLUMNS)


_COST_COLUMNS = {
    "parameters": st.column_config.NumberColumn(format="localized"),
    "µs per example": st.column_config.NumberColumn(format="%.2f", help="batched inference on this server, eval mode"),
    "test accuracy %": st.column_config.NumberColumn(format="%.1f"),
}


def _explain_bias_shift(class_bias: list[float], config: dict) -> None:
    unseen_classes = TrainConfig.from_dict(config).unseen_classes
    unseen = reports.class_list(unseen_classes, config["dataset"])
    noun = "classes" if len(unseen_classes) > 1 else "class"
    shift = max(class_bias, key=abs)
    if shift == 0:
        st.caption(f"No logit shift for {noun} {unseen} helped on the validation split, so none was applied.")
        return
    st.info(
        f"The students never saw {noun} {unseen}. The distilled one still learned about it from the teacher's soft "
        f"targets, but too timidly: adding {shift:+.2f} to the logit of {noun} {unseen} fixes that. The shift was "
        "chosen on the validation split only, then applied once to the test set, so the test number stays honest."
    )


def show_seed_overview(records: list[RunRecord]) -> None:
    """Several seeds of one setting: a status table, then mean ± std of the gain once all have ended."""
    st.dataframe(pd.DataFrame(reports.runs_table(records)), hide_index=True)
    if _any_live(records):
        st.caption("The spread across seeds appears when every seed has finished.")
        return
    summary = reports.seeds_summary(records)
    if summary is None:
        st.warning("No seed completed, so there is no gain to summarise.")
        return
    gain = summary["gain"]
    st.metric("Gain from distillation, mean ± std", f"{100 * gain['mean']:+.2f} ± {100 * gain['std']:.2f} points")
    st.plotly_chart(viz.seeds_gain_figure(summary["gain_points"]), width="stretch", key="seeds_gain")
    st.caption("One run is noise: if the band around the mean includes zero, these seeds cannot tell a gain apart.")
