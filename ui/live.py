"""Following runs live: polling fragments, progress with ETA, and the results view of a finished pair run.

Training happens in the job manager's worker threads; these helpers only read the run store. A fragment re-polls
every POLL_SECONDS while a run is live and stops polling once every run it follows has ended, so an idle page
costs nothing. The run ids live in the URL (`?run=ID` or `?run=ID1,ID2` for several seeds), which is how a refresh
or a second tab finds the same runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from distill_core import reports, viz
from distill_core.data import DATASETS
from distill_core.store import TERMINAL_STATUSES, RunRecord
from distill_core.training import TrainConfig
from ui.i18n import language
from ui.resources import job_manager, run_store

POLL_SECONDS = 1.5

TEXT = {
    "en": {
        "gone": "That run no longer exists (it may have been deleted). Start a new one above.",
        "queued_at": "Waiting for a free worker: {ahead} run(s) ahead of this one.",
        "queued": "Waiting for a free worker.",
        "eta_unknown": "estimating time left…",
        "eta": "about {seconds:.0f} s left",
        "progress": "{percent:.0f}% · {elapsed:.0f} s so far · {eta}",
        "stop": "Stop this run",
        "stop_elsewhere": "This run belongs to another server process; stop it there.",
        "failed": "This run failed: {reason}. Check the settings and try again.",
        "no_reason": "no reason was recorded",
        "endings": {
            "diverged": "The loss became NaN or infinite, so training stopped. Lower the learning rate "
            "(1e-3 is a safe start for Adam) and try again.",
            "cancelled": "This run was stopped before the end. What it recorded so far is shown below.",
            "interrupted": "The server stopped while this run was going, so it did not finish. "
            "What it recorded so far is shown below; start it again to get final numbers.",
        },
        "statuses": {},  # English shows the stored status as it is
        "run_columns": {},  # ... and the library's column names
        "run_caption": "Run {label} · status: **{status}**",
        "result": "Result",
        "teacher_metric": "Teacher ({name})",
        "baseline_metric": "Baseline (labels only)",
        "distilled_metric": "Distilled (soft targets)",
        "corrected_metric": "Distilled + bias shift",
        "points": "{value:+.2f} points",
        "when_completed": "after the last epoch, never the best one",
        "when_stopped": "where the run stopped",
        "result_caption": "Test accuracy {when}. Both students started from the same weights and saw the same "
        "batches; only the loss differed, so the gain is what the teacher's soft targets added.",
        "students": {"baseline": "Baseline", "distilled": "Distilled"},
        "confusion_title": "{name}: confusion matrix",
        "cost_intro": "**Size and speed** (batched inference on this server): distillation pays off when the "
        "student is smaller or faster than the teacher yet keeps most of its accuracy.",
        "cost_columns": {
            "model": "model",
            "parameters": "parameters",
            "µs per example": "µs per example",
            "test accuracy %": "test accuracy %",
        },
        "cost_help": "batched inference on this server, eval mode",
        "models": {},  # English shows the library's model names
        "class_noun": {"one": "class", "many": "classes"},
        "bias_none": "No logit shift for {noun} {unseen} helped on the validation split, so none was applied.",
        "bias_info": "The students never saw {noun} {unseen}. The distilled one still learned about it from the "
        "teacher's soft targets, but too timidly: adding {shift:+.2f} to the logit of {noun} {unseen} fixes that. "
        "The shift was chosen on the validation split only, then applied once to the test set, so the test number "
        "stays honest.",
        "seeds_wait": "The spread across seeds appears when every seed has finished.",
        "no_seed": "No seed completed, so there is no gain to summarise.",
        "gain_metric": "Gain from distillation, mean ± std",
        "gain_value": "{mean:+.2f} ± {std:.2f} points",
        "seeds_caption": "One run is noise: if the band around the mean includes zero, these seeds cannot tell a "
        "gain apart.",
    },
    "es": {
        "gone": "Esa ejecución ya no existe (quizá se borró). Inicia una nueva más arriba.",
        "queued_at": "Esperando un proceso libre: hay {ahead} ejecución(es) antes que esta.",
        "queued": "Esperando un proceso libre.",
        "eta_unknown": "calculando el tiempo restante…",
        "eta": "faltan unos {seconds:.0f} s",
        "progress": "{percent:.0f}% · {elapsed:.0f} s transcurridos · {eta}",
        "stop": "Detener esta ejecución",
        "stop_elsewhere": "Esta ejecución pertenece a otro proceso del servidor; detenla desde allí.",
        "failed": "Esta ejecución falló: {reason}. Revisa la configuración y vuelve a intentarlo.",
        "no_reason": "no se registró el motivo",
        "endings": {
            "diverged": "La pérdida se volvió NaN o infinita, así que el entrenamiento se detuvo. Baja la tasa de "
            "aprendizaje (1e-3 es un buen punto de partida para Adam) y vuelve a intentarlo.",
            "cancelled": "Esta ejecución se detuvo antes del final. Abajo se muestra lo que alcanzó a registrar.",
            "interrupted": "El servidor se detuvo mientras esta ejecución estaba en curso, así que no terminó. "
            "Abajo se muestra lo que alcanzó a registrar; iníciala de nuevo para obtener los números finales.",
        },
        "statuses": {
            "queued": "en cola",
            "running": "en curso",
            "completed": "completada",
            "failed": "fallida",
            "diverged": "divergió",
            "cancelled": "detenida",
            "interrupted": "interrumpida",
        },
        "run_columns": {
            "status": "estado",
            "student": "estudiante",
            "alpha": "alfa",
            "epochs": "épocas",
            "seed": "semilla",
            "omitted": "omitidas",
            "baseline %": "base %",
            "distilled %": "destilado %",
            "gain (points)": "ganancia (puntos)",
            "dataset": "conjunto de datos",
            "created": "creada",
        },
        "run_caption": "Ejecución {label} · estado: **{status}**",
        "result": "Resultado",
        "teacher_metric": "Maestro ({name})",
        "baseline_metric": "Estudiante base (solo etiquetas)",
        "distilled_metric": "Estudiante destilado (objetivos suaves)",
        "corrected_metric": "Destilado + ajuste de sesgo",
        "points": "{value:+.2f} puntos",
        "when_completed": "tras la última época (nunca la mejor)",
        "when_stopped": "en el punto donde se detuvo la ejecución",
        "result_caption": "Exactitud en prueba {when}. Ambos estudiantes partieron de los mismos pesos y vieron los "
        "mismos lotes; solo cambió la pérdida, así que la ganancia es lo que aportaron los objetivos suaves del "
        "maestro.",
        "students": {"baseline": "Estudiante base", "distilled": "Estudiante destilado"},
        "confusion_title": "{name}: matriz de confusión",
        "cost_intro": "**Tamaño y velocidad** (inferencia por lotes en este servidor): la destilación vale la pena "
        "cuando el estudiante es más pequeño o más rápido que el maestro y aun así conserva casi toda su exactitud.",
        "cost_columns": {
            "model": "modelo",
            "parameters": "parámetros",
            "µs per example": "µs por ejemplo",
            "test accuracy %": "exactitud en prueba %",
        },
        "cost_help": "inferencia por lotes en este servidor, en modo evaluación",
        "models": {"teacher": "maestro", "baseline": "estudiante base", "distilled": "estudiante destilado"},
        "class_noun": {"one": "la clase", "many": "las clases"},
        "bias_none": "Ningún desplazamiento del logit de {noun} {unseen} mejoró la partición de validación, así que "
        "no se aplicó ninguno.",
        "bias_info": "Los estudiantes nunca vieron {noun} {unseen}. Aun así, el destilado aprendió algo de ella "
        "gracias a los objetivos suaves del maestro, pero con demasiada timidez: sumar {shift:+.2f} al logit de "
        "{noun} {unseen} lo corrige. El desplazamiento se eligió solo con la partición de validación y luego se "
        "aplicó una vez al conjunto de prueba, así que el resultado de prueba sigue siendo honesto.",
        "seeds_wait": "La dispersión entre semillas aparece cuando todas las semillas hayan terminado.",
        "no_seed": "Ninguna semilla terminó, así que no hay ganancia que resumir.",
        "gain_metric": "Ganancia de la destilación, media ± desviación estándar",
        "gain_value": "{mean:+.2f} ± {std:.2f} puntos",
        "seeds_caption": "Una sola ejecución es ruido: si la banda alrededor de la media incluye el cero, estas "
        "semillas no permiten distinguir una ganancia.",
    },
}


def _text() -> dict:
    # Read at call time, not import time: this module is imported once, the language changes per session.
    return TEXT[language()]


def status_label(status: str) -> str:
    """A run status ("completed", …) in the sidebar's language."""
    return _text()["statuses"].get(status, status)


def url_run_ids(param: str = "run") -> list[str]:
    """The run ids in the URL's `param` (comma separated), in order, without blanks or repeats."""
    raw = st.query_params.get(param, "")
    return list(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def follow(run_ids: list[str], body: Callable[[list[RunRecord]], None]) -> None:
    """Draw `body(records)` now, and again every POLL_SECONDS (in a fragment) while any of the runs is live."""
    records = _records(run_ids)
    if not records:
        st.warning(_text()["gone"])
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
    text = _text()
    status = job_manager().status(record.run_id)
    if status.state == "queued" and status.queue_position is not None:
        ahead = status.queue_position - 1 + job_manager().running_count()
        st.info(text["queued_at"].format(ahead=ahead))
    elif record.status == "queued":
        st.info(text["queued"])
    else:
        done = reports.progress(history)
        eta = text["eta_unknown"] if done.eta_seconds is None else text["eta"].format(seconds=done.eta_seconds)
        label = text["progress"].format(percent=100 * done.fraction, elapsed=done.elapsed_seconds, eta=eta)
        st.progress(done.fraction, text=label)
    if st.button(text["stop"], key=f"stop_{record.run_id}"):
        if not job_manager().cancel(record.run_id):
            st.warning(text["stop_elsewhere"])


def show_ending(record: RunRecord) -> None:
    """Explain a run that did not complete: failed (with its stored error), diverged, cancelled or interrupted."""
    text = _text()
    if record.status == "failed":
        st.error(text["failed"].format(reason=record.error or text["no_reason"]))
    elif record.status == "diverged":
        st.error(text["endings"]["diverged"])
    elif record.status in text["endings"]:
        st.warning(text["endings"][record.status])


def show_pair_run(record: RunRecord) -> None:
    """One pair run: status, live charts, and the final comparison once it has metrics."""
    history = run_store().history(record.run_id)
    st.caption(_text()["run_caption"].format(label=reports.run_label(record), status=status_label(record.status)))
    show_progress(record, history)
    show_ending(record)
    accuracy_column, loss_column = st.columns(2)
    accuracy_column.plotly_chart(viz.accuracy_figure(history), width="stretch", key=f"acc_{record.run_id}")
    loss_column.plotly_chart(viz.loss_figure(history), width="stretch", key=f"loss_{record.run_id}")
    if reports.gain_points(record.metrics) is not None:
        show_results(record)


def show_results(record: RunRecord) -> None:
    """Final test accuracies with the gain, the bias-shift rescue, per-class accuracy, confusions and costs."""
    text = _text()
    metrics, config = record.metrics, record.config
    class_names = DATASETS[config["dataset"]].class_names
    teacher, baseline, distilled = metrics["teacher"], metrics["baseline"], metrics["distilled"]
    gain = reports.gain_points(metrics)
    corrected = distilled.get("bias_corrected")
    st.subheader(text["result"])
    columns = st.columns(4 if corrected else 3)
    columns[0].metric(text["teacher_metric"].format(name=teacher.get("name")), percent(teacher.get("test_accuracy")))
    columns[1].metric(text["baseline_metric"], percent(baseline["test_accuracy"]))
    gain_delta = text["points"].format(value=gain)
    columns[2].metric(text["distilled_metric"], percent(distilled["test_accuracy"]), delta=gain_delta)
    if corrected:
        delta = text["points"].format(value=100 * (corrected["test_accuracy"] - distilled["test_accuracy"]))
        columns[3].metric(text["corrected_metric"], percent(corrected["test_accuracy"]), delta=delta)
    when = text["when_completed"] if record.status == "completed" else text["when_stopped"]
    st.caption(text["result_caption"].format(when=when))
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
    for column, name, role, student in (
        (left, "Baseline", "baseline", baseline),
        (right, "Distilled", "distilled", distilled),
    ):
        title = text["confusion_title"].format(name=text["students"][role])
        figure = viz.confusion_figure(student["confusion_matrix"], class_names, title=title)
        column.plotly_chart(figure, width="stretch", key=f"confusion_{name}_{record.run_id}")
    st.markdown(text["cost_intro"])
    costs = pd.DataFrame(reports.model_cost_rows(metrics))
    if not costs.empty:
        costs["model"] = costs["model"].map(lambda model: text["models"].get(model, model))
    st.dataframe(costs, hide_index=True, column_config=_cost_columns(text))


def _cost_columns(text: dict) -> dict:
    # The data keeps the library's column names; only the headers shown follow the language.
    labels = text["cost_columns"]
    return {
        "model": labels["model"],
        "parameters": st.column_config.NumberColumn(labels["parameters"], format="localized"),
        "µs per example": st.column_config.NumberColumn(
            labels["µs per example"], format="%.2f", help=text["cost_help"]
        ),
        "test accuracy %": st.column_config.NumberColumn(labels["test accuracy %"], format="%.1f"),
    }


def _explain_bias_shift(class_bias: list[float], config: dict) -> None:
    unseen_classes = TrainConfig.from_dict(config).unseen_classes
    unseen = reports.class_list(unseen_classes, config["dataset"])
    text = _text()
    noun = text["class_noun"]["many" if len(unseen_classes) > 1 else "one"]
    shift = max(class_bias, key=abs)
    if shift == 0:
        st.caption(text["bias_none"].format(noun=noun, unseen=unseen))
        return
    st.info(text["bias_info"].format(noun=noun, unseen=unseen, shift=shift))


def runs_dataframe(records: list[RunRecord], **options: Any) -> Any:
    """The runs table of `records` with headers and statuses in the sidebar's language; `options` go to st.dataframe.

    Only what is shown is translated: the column names of the data (which tests and exports read) stay the library's.
    """
    text = _text()
    table = pd.DataFrame(reports.runs_table(records))
    if not table.empty:
        table["status"] = table["status"].map(status_label)
    formats = {"baseline %": "%.1f", "distilled %": "%.1f", "gain (points)": "%+.2f"}
    columns = {
        name: st.column_config.NumberColumn(text["run_columns"].get(name), format=number_format)
        for name, number_format in formats.items()
    }
    columns.update({name: label for name, label in text["run_columns"].items() if name not in formats})
    return st.dataframe(table, hide_index=True, column_config=columns, **options)


def show_seed_overview(records: list[RunRecord]) -> None:
    """Several seeds of one setting: a status table, then mean ± std of the gain once all have ended."""
    text = _text()
    runs_dataframe(records)
    if _any_live(records):
        st.caption(text["seeds_wait"])
        return
    summary = reports.seeds_summary(records)
    if summary is None:
        st.warning(text["no_seed"])
        return
    gain = summary["gain"]
    st.metric(text["gain_metric"], text["gain_value"].format(mean=100 * gain["mean"], std=100 * gain["std"]))
    st.plotly_chart(viz.seeds_gain_figure(summary["gain_points"]), width="stretch", key="seeds_gain")
    st.caption(text["seeds_caption"])
