"""Train: a baseline and a distilled student side by side, followed live, with the final comparison."""

import streamlit as st

from distill_core.data import DATASETS, parse_classes
from distill_core.reports import parse_seeds, run_label
from distill_core.store import RunRecord
from distill_core.training import TrainConfig, max_epochs
from ui import live
from ui.errors import friendly_errors
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

st.title("Train a student")
st.caption(
    "Two students with the same architecture and the same starting weights: the **baseline** learns from the labels "
    "only, the **distilled** one also from the teacher's soft targets at temperature T. Any gap is the teacher's doing."
)
try:
    chosen = selection()
except ValueError as error:
    st.warning(f"{error}. Pick another dataset in the sidebar, or train a teacher on the Teachers page.")
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


st.button("Preset: Hinton's missing 3s", key="train_preset_threes", on_click=load_missing_threes)
st.caption("Class 3 is removed from the transfer set. Can the student recognise a digit it never saw?")

with st.form("train_form"):
    st.markdown(f"Dataset **{chosen.dataset}**, teacher **{chosen.teacher}** (change them in the sidebar).")
    left, right = st.columns(2)
    left.selectbox("Student architecture", STUDENTS, key="train_student")
    left.text_input("…or type one", key="train_custom_student", placeholder="e.g. mlp:100-50")
    right.slider("Temperature T", 1.0, 20.0, step=0.5, key="train_temperature", help="Higher T softens the teacher.")
    right.slider("alpha: weight of the soft targets", 0.0, 1.0, step=0.05, key="train_alpha", help="1 = no labels.")
    left.number_input("Epochs", 1, max_epochs(), key="train_epochs")
    left.number_input("Batch size", 1, 4096, key="train_batch_size")
    right.number_input("Learning rate (Adam)", 1e-5, 10.0, step=1e-4, format="%.5f", key="train_lr")
    right.text_input("Seed(s)", key="train_seeds", help="'0,1,2' trains one pair per seed and reports mean ± std.")
    st.slider("Share of the train split used as the transfer set", 0.05, 1.0, step=0.05, key="train_fraction")
    left, right = st.columns(2)
    left.multiselect("Leave these classes out", info.class_names, key=omit_key)
    right.multiselect("…or keep only these classes", info.class_names, key=only_key)
    submitted = st.form_submit_button("Start training", type="primary")

if submitted:
    state = st.session_state
    with friendly_errors("Could not start training"):
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
        st.warning("The run in the address is a teacher run: follow it on the Teachers page.")
        return
    if len(records) > 1:
        live.show_seed_overview(records)
        labels = {record.run_id: run_label(record) for record in records}
        run_id = st.selectbox("Show one seed in detail", list(labels), format_func=labels.get, key="train_detail")
        records = [record for record in records if record.run_id == run_id]
    live.show_pair_run(records[0])


store = store_or_stop()
if run_ids := live.url_run_ids():
    st.divider()
    live.follow(run_ids, show_runs)

st.divider()
st.subheader("Your runs")
owner = session_owner()
mine = [record for record in store.list_runs(owner=owner, limit=20) if record.kind == "pair"]
others = [record for record in store.list_runs(limit=30) if record.kind == "pair" and record.owner != owner]
labels = {r.run_id: f"{'yours' if r.owner == owner else 'other'} · {r.status} · {run_label(r)}" for r in mine + others}
if not labels:
    st.caption("Runs you start appear here, so you can come back to them later.")
else:
    reopen = st.selectbox("Re-open a run", list(labels), format_func=labels.get, key="train_reopen")
    if st.button("Open", key="train_open"):
        st.query_params["run"] = reopen
        st.rerun()
