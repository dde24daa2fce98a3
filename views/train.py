"""Train: a baseline and a distilled student side by side, followed live, with the final comparison."""

import streamlit as st

from distill_core.data import DATASETS, parse_classes
from distill_core.reports import parse_seeds, run_label
from distill_core.store import RunRecord
from distill_core.training import TrainConfig, max_epochs
from ui import live
from ui.errors import friendly_errors
from ui.i18n import language
from ui.resources import job_manager, store_or_stop
from ui.state import selection, session_owner

STUDENTS = ["mlp:800-800", "mlp:30", "cnn-small"]
DEFAULTS = {
    "train_student": "mlp:800-800",
    "train_custom_student": "",
    "train_temperature": 4.0,
    "train_alpha": 0.9,
    "train_epochs": 10,
    "train_batch_size": 128,
    "train_lr": 1e-3,
    "train_seeds": "0",
    "train_fraction": 1.0,
}

TEXT = {
    "en": {
        "title": "Train a student",
        "intro": "Two students with the same architecture and the same starting weights: the **baseline** learns from "
        "the labels only, the **distilled** one also from the teacher's soft targets at temperature T. Any gap is the "
        "teacher's doing.",
        "no_selection": "There is no teacher for {dataset} yet. Pick another dataset in the sidebar, "
        "or train a teacher on the Teachers page.",
        "preset": "Preset: Hinton's missing 3s",
        "preset_caption": "Class 3 is removed from the transfer set. Can the student recognise a digit it never saw?",
        "form_intro": "Dataset **{dataset}**, teacher **{teacher}** (change them in the sidebar).",
        "student": "Student architecture",
        "custom_student": "…or type one",
        "custom_placeholder": "e.g. mlp:100-50",
        "temperature": "Temperature T",
        "temperature_help": "Higher T softens the teacher.",
        "alpha": "alpha: weight of the soft targets",
        "alpha_help": "1 = no labels.",
        "epochs": "Epochs",
        "batch_size": "Batch size",
        "lr": "Learning rate (Adam)",
        "seeds": "Seed(s)",
        "seeds_help": "'0,1,2' trains one pair per seed and reports mean ± std.",
        "fraction": "Share of the train split used as the transfer set",
        "omit": "Leave these classes out",
        "only": "…or keep only these classes",
        "choose": "Choose options",
        "start": "Start training",
        "start_failed": "Could not start training",
        "teacher_run": "The run in the address is a teacher run: follow it on the Teachers page.",
        "detail": "Show one seed in detail",
        "your_runs": "Your runs",
        "yours": "yours",
        "other": "other",
        "no_runs": "Runs you start appear here, so you can come back to them later.",
        "reopen": "Re-open a run",
        "open": "Open",
    },
    "es": {
        "title": "Entrena un estudiante",
        "intro": "Dos estudiantes con la misma arquitectura y los mismos pesos iniciales: el **estudiante base** "
        "aprende solo de las etiquetas; el **destilado**, también de los objetivos suaves del maestro a temperatura T. "
        "Cualquier diferencia entre ambos se debe al maestro.",
        "no_selection": "Aún no hay maestro para {dataset}. Elige otro conjunto de datos en la barra lateral "
        "o entrena un maestro en la página "
        "Maestros.",
        "preset": "Ejemplo de Hinton: los 3 que faltan",
        "preset_caption": "Se quita la clase 3 del conjunto de transferencia. ¿Podrá el estudiante reconocer un dígito "
        "que nunca vio?",
        "form_intro": "Conjunto de datos **{dataset}**, maestro **{teacher}** (cámbialos en la barra lateral).",
        "student": "Arquitectura del estudiante",
        "custom_student": "…o escribe una",
        "custom_placeholder": "p. ej. mlp:100-50",
        "temperature": "Temperatura T",
        "temperature_help": "Una T más alta suaviza las respuestas del maestro.",
        "alpha": "alfa: peso de los objetivos suaves",
        "alpha_help": "1 = sin etiquetas.",
        "epochs": "Épocas",
        "batch_size": "Tamaño de lote",
        "lr": "Tasa de aprendizaje (Adam)",
        "seeds": "Semilla(s)",
        "seeds_help": "'0,1,2' entrena un par por semilla y reporta la media ± la desviación estándar.",
        "fraction": "Fracción de la partición de entrenamiento usada como conjunto de transferencia",
        "omit": "Dejar fuera estas clases",
        "only": "…o conservar solo estas clases",
        "choose": "Elige clases",
        "start": "Iniciar entrenamiento",
        "start_failed": "No se pudo iniciar el entrenamiento",
        "teacher_run": "La ejecución de la dirección es de un maestro: síguela en la página Maestros.",
        "detail": "Ver una semilla en detalle",
        "your_runs": "Tus ejecuciones",
        "yours": "tuya",
        "other": "de otra persona",
        "no_runs": "Las ejecuciones que inicies aparecerán aquí, para que puedas volver a ellas más tarde.",
        "reopen": "Reabrir una ejecución",
        "open": "Abrir",
    },
}
text = TEXT[language()]

st.title(text["title"])
st.caption(text["intro"])
chosen = selection()
if not chosen.teacher:  # no teacher for this dataset yet: a run could only fail
    st.warning(text["no_selection"].format(dataset=chosen.dataset))
    st.stop()
info = DATASETS[chosen.dataset]
omit_key, only_key = f"train_omit_{chosen.dataset}", f"train_only_{chosen.dataset}"
for key, value in {**DEFAULTS, omit_key: [], only_key: []}.items():
    st.session_state.setdefault(key, value)


def load_missing_threes() -> None:
    """Hinton's headline demo: the transfer set has no 3s at all, yet the distilled student learns them."""
    st.session_state.update(DEFAULTS)
    st.session_state.update(train_temperature=8.0, train_alpha=1.0, train_epochs=30)
    st.session_state.update({omit_key: [info.class_names[3]], only_key: []})


st.button(text["preset"], key="train_preset_threes", on_click=load_missing_threes)
st.caption(text["preset_caption"])

with st.form("train_form"):
    st.markdown(text["form_intro"].format(dataset=chosen.dataset, teacher=chosen.teacher))
    left, right = st.columns(2)
    left.selectbox(text["student"], STUDENTS, key="train_student")
    left.text_input(text["custom_student"], key="train_custom_student", placeholder=text["custom_placeholder"])
    right.slider(text["temperature"], 1.0, 20.0, step=0.5, key="train_temperature", help=text["temperature_help"])
    right.slider(text["alpha"], 0.0, 1.0, step=0.05, key="train_alpha", help=text["alpha_help"])
    left.number_input(text["epochs"], 1, max_epochs(), key="train_epochs")
    left.number_input(text["batch_size"], 1, 4096, key="train_batch_size")
    right.number_input(text["lr"], 1e-5, 10.0, step=1e-4, format="%.5f", key="train_lr")
    right.text_input(text["seeds"], key="train_seeds", help=text["seeds_help"])
    st.slider(text["fraction"], 0.05, 1.0, step=0.05, key="train_fraction")
    left, right = st.columns(2)
    left.multiselect(text["omit"], info.class_names, key=omit_key, placeholder=text["choose"])
    right.multiselect(text["only"], info.class_names, key=only_key, placeholder=text["choose"])
    submitted = st.form_submit_button(text["start"], type="primary")

if submitted:
    state = st.session_state
    with friendly_errors(text["start_failed"]):
        configs = [
            TrainConfig(
                dataset=chosen.dataset,
                teacher=chosen.teacher,
                student=state.train_custom_student.strip() or state.train_student,
                temperature=state.train_temperature,
                alpha=state.train_alpha,
                epochs=state.train_epochs,
                batch_size=state.train_batch_size,
                lr=state.train_lr,
                seed=seed,
                train_fraction=state.train_fraction,
                omit_classes=parse_classes(state[omit_key], info, argument="leave out"),
                only_classes=parse_classes(state[only_key], info, argument="keep only"),
            )
            for seed in parse_seeds(state.train_seeds)
        ]
        owner = session_owner()
        run_ids = [job_manager().submit("pair", c.to_dict(), owner=owner, teacher_id=chosen.teacher) for c in configs]
        st.query_params["run"] = ",".join(run_ids)


def show_runs(records: list[RunRecord]) -> None:
    """Several seeds get an overview and a chooser; the chosen (or only) run gets the full view."""
    records = [record for record in records if record.kind == "pair"]
    if not records:
        st.warning(text["teacher_run"])
        return
    if len(records) > 1:
        live.show_seed_overview(records)
        labels = {record.run_id: run_label(record) for record in records}
        run_id = st.selectbox(text["detail"], list(labels), format_func=labels.get, key="train_detail")
        records = [record for record in records if record.run_id == run_id]
    live.show_pair_run(records[0])


store = store_or_stop()
if run_ids := live.url_run_ids():
    st.divider()
    live.follow(run_ids, show_runs)

st.divider()
st.subheader(text["your_runs"])
owner = session_owner()
mine = [record for record in store.list_runs(owner=owner, limit=20) if record.kind == "pair"]
others = [record for record in store.list_runs(limit=30) if record.kind == "pair" and record.owner != owner]
labels = {
    # No status here: this list is drawn once per page run, while a live run's status changes in its fragment.
    r.run_id: f"{text['yours'] if r.owner == owner else text['other']} · {run_label(r)}"
    for r in mine + others
}
if not labels:
    st.caption(text["no_runs"])
else:
    # The key follows the list, so a new run resets the picker to the newest of this session's runs.
    reopen = st.selectbox(
        text["reopen"], list(labels), format_func=labels.get, key=f"train_reopen_{'-'.join(labels)[:200]}"
    )
    if st.button(text["open"], key="train_open"):
        st.query_params["run"] = reopen
        st.rerun()
