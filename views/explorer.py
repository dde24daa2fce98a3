"""Temperature explorer: one example's soft targets as T changes, the test set at T, and the loss anatomy.

Everything that does not depend on T is computed once (per example, or per teacher and dataset), so moving
the temperature slider only re-runs a softmax on cached logits.
"""

from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from distill_core import explore, reports, runs, viz
from ui import resources
from ui.errors import friendly_errors
from ui.state import selection

st.title("Temperature explorer")
st.caption("Raise the temperature and the teacher's hesitations become visible: that is what a student learns from.")

try:
    chosen = selection()
except ValueError:  # no default teacher for this dataset
    chosen = None
if chosen is None or not chosen.teacher:
    st.info("This dataset has no teacher yet. Train or import one on the **Teachers** page, then come back.")
    st.page_link("views/teachers.py", label="Go to Teachers", icon=":material/school:")
    st.stop()

splits = loaded = None
with friendly_errors(f"Loading {chosen.dataset} with teacher {chosen.teacher}"):
    splits = resources.dataset(chosen.dataset)
    loaded = resources.teacher(chosen.teacher, chosen.dataset)
if loaded is None:
    st.stop()

test, test_logits, names = splits.test, loaded.logits["test"], list(splits.info.class_names)
student = explore.untrained_student(splits.info)


@st.cache_data(show_spinner=False, max_entries=8)
def dataset_tables(teacher: str, dataset: str) -> tuple:
    """What does not depend on T: entropy curves, and the most ambiguous examples with the teacher's answer."""
    logits, labels = (
        resources.teacher(teacher, dataset).logits["test"],
        resources.dataset(dataset).test.labels,
    )
    overall, per_class = explore.dataset_entropy(logits, labels, explore.CURVE_TEMPERATURES)
    answers = {i: explore.example_at_temperature(logits[i], 1.0)["predicted"] for i in explore.most_ambiguous(logits)}
    return overall, per_class, answers


def pick(index: int) -> None:
    st.session_state["explorer_pick"] = int(index)


def pick_nth_of_class() -> None:
    members = explore.examples_of_class(test.labels, st.session_state["explorer_class"])
    if members:
        pick(members[min(st.session_state["explorer_nth"], len(members)) - 1])


def pick_random() -> None:
    st.session_state["explorer_seed"] = st.session_state.get("explorer_seed", 0) + 1
    pick(explore.random_example(len(test), st.session_state["explorer_seed"]))


def set_example(key: int | str, example: explore.Example) -> None:
    """Make `example` the one on screen; `key` is its test index or the upload's file id."""
    st.session_state.update(explorer_pick=key, explorer_example=(key, example), explorer_figures={})


def percent(probability: float) -> str:
    return "< 0.01%" if probability < 1e-4 else f"{probability:.2%}"


# A new dataset or teacher starts again from the first test example.
if st.session_state.get("explorer_context") != (chosen.dataset, chosen.teacher):
    st.session_state.update(explorer_context=(chosen.dataset, chosen.teacher), explorer_pick=0)
    st.session_state.pop("explorer_example", None)
overall_entropy, class_entropy, ambiguous = dataset_tables(chosen.teacher, chosen.dataset)

with st.expander("1 · Pick an example", expanded=True):
    by_index, by_class, at_random, unsure, upload = st.tabs(
        ["By number", "By class", "Random", "Most ambiguous", "Upload your own"]
    )
    with by_index:
        st.number_input(
            f"Test example number (0 to {len(test) - 1})",
            0,
            len(test) - 1,
            key="explorer_index",
            on_change=lambda: pick(st.session_state["explorer_index"]),
        )
    with by_class:
        left, right = st.columns(2)
        left.selectbox(
            "Class",
            range(len(names)),
            format_func=names.__getitem__,
            key="explorer_class",
            on_change=pick_nth_of_class,
        )
        right.number_input(
            "Which one (1 = the first in the test set)",
            min_value=1,
            key="explorer_nth",
            on_change=pick_nth_of_class,
        )
    with at_random:
        st.button("Show a random test example", icon=":material/casino:", key="explorer_random", on_click=pick_random)
    with unsure:
        st.caption("The test examples where the teacher's answer at T = 1 has the highest entropy.")
        st.radio(
            "Most ambiguous for the teacher",
            list(ambiguous),
            index=None,
            key="explorer_ambiguous",
            format_func=lambda i: (
                f"#{i}: labelled {names[int(test.labels[i])]}, the teacher says {names[ambiguous[i]]}"
            ),
            on_change=lambda: pick(st.session_state["explorer_ambiguous"]),
        )
    with upload:
        uploaded = st.file_uploader(
            "A PNG or JPEG of one handwritten digit or object",
            type=["png", "jpg", "jpeg"],
            key="explorer_upload",
        )
        if uploaded is not None and st.session_state.get("explorer_upload_id") != uploaded.file_id:
            with friendly_errors("Reading your image"):
                example = explore.example_from_upload(uploaded.getvalue(), uploaded.name, loaded.teacher, student)
                st.session_state["explorer_upload_id"] = uploaded.file_id
                set_example(uploaded.file_id, example)

current = st.session_state["explorer_pick"]
if st.session_state.get("explorer_example", (None,))[0] != current:
    set_example(current, explore.example_from_split(test, test_logits, current, student))
example = st.session_state["explorer_example"][1]

if st.session_state.get("temperature") not in explore.SLIDER_TEMPERATURES:
    st.session_state["temperature"] = 1.0  # also replaces a value another page left under this key
temperature = st.select_slider(
    "Temperature T (log scale: each step multiplies T by about 1.3)",
    options=explore.SLIDER_TEMPERATURES,
    format_func=lambda t: f"{t:g}",
    key="temperature",
)
now = explore.example_at_temperature(example.teacher_logits, temperature)


def example_figure(name: str, build: Callable[[], go.Figure]) -> go.Figure:
    """A figure that depends on the example but not on T: built once per example, reused at every T."""
    figures = st.session_state["explorer_figures"]
    if name not in figures:
        figures[name] = build()
    return figures[name]


def show_example_at_t() -> None:
    picture, bars = st.columns([1, 3])
    label_text = "no label (your image)" if example.label is None else f"labelled {names[example.label]}"
    picture.plotly_chart(
        example_figure("image", lambda: viz.image_figure(example.pixels, f"{example.title}, {label_text}")),
        width="stretch",
    )
    picture.metric("Entropy at T", f"{now['entropy']:.3f} nats")
    picture.metric("Share of the maximum (log K)", f"{now['entropy_fraction']:.0%}")
    bars.plotly_chart(
        viz.soft_targets_figure(names, now["soft_targets"], now["soft_targets_at_1"], example.label, temperature),
        width="stretch",
        key="soft_targets",
    )
    runners_up = ", ".join(f"**{names[k]}** ({percent(p)})" for k, p in now["hesitations"])
    answer = names[now["predicted"]]
    bars.markdown(
        f"At T = {temperature:g} the teacher answers **{answer}** "
        f"({percent(now['soft_targets'][now['predicted']])}) and hesitates toward {runners_up}."
    )


def show_entropy_curves() -> None:
    left, right = st.columns(2)
    left.plotly_chart(
        viz.entropy_curve_figure(explore.CURVE_TEMPERATURES, example.entropy_curve, temperature, len(names)),
        width="stretch",
    )
    left.caption(
        "Entropy never falls as T rises: low T is the teacher's bare answer, very high T says "
        "nothing (uniform). Useful temperatures sit on the slope in between."
    )
    animation = example_figure(
        "animation",
        lambda: viz.softmax_animation_figure(names, explore.SLIDER_TEMPERATURES, example.animation_frames),
    )
    right.plotly_chart(animation, width="stretch")
    right.caption("Press play: the same logits, divided by a growing T. The order of the classes never changes.")


def show_dataset() -> None:
    st.plotly_chart(
        viz.dataset_entropy_figure(explore.CURVE_TEMPERATURES, overall_entropy, class_entropy, names, temperature),
        width="stretch",
    )
    st.caption(f"Averaged over the {len(test):,} test examples; click a class in the legend to hide it.")
    matrix = explore.dark_knowledge(test_logits, test.labels, temperature)
    heatmap, pairs = st.columns([3, 1])
    hide = heatmap.toggle("Hide the diagonal (the correct class)", value=True, key="explorer_hide_diagonal")
    heatmap.plotly_chart(viz.dark_knowledge_figure(matrix, names, hide, temperature), width="stretch")
    pairs.markdown("**Classes the teacher finds most alike**")
    pairs.dataframe(
        viz.similar_pairs_table(explore.similar_pairs(matrix), names),
        hide_index=True,
        column_config={"shared mass": st.column_config.NumberColumn(format="%.3f")},
    )
    smoothed = explore.smoothing_at_same_entropy(now["soft_targets"], example.target_class)
    st.plotly_chart(
        viz.smoothing_vs_soft_figure(names, now["soft_targets"], smoothed, example.target_class, now["entropy"]),
        width="stretch",
    )
    st.caption(
        "Label smoothing at the same entropy spreads the doubt evenly over every wrong class. It cannot say "
        "that this example looks like one particular other class; the teacher's soft targets can, and "
        "that is the extra knowledge a distilled student gets."
    )


def chosen_student() -> tuple[str, torch.Tensor, np.ndarray]:
    """The student the loss anatomy asks: the untrained one, or a finished run's distilled student."""
    trained = {r.run_id: r for r in runs.runs_with_students(resources.store_or_stop(), chosen.dataset)[:20]}
    choice = st.selectbox(
        "Student",
        ["untrained", *trained],
        format_func=lambda key: (
            f"untrained {explore.DEFAULT_STUDENT} (fixed seed): its first push from this example"
            if key == "untrained"
            else f"trained: run {reports.run_label(trained[key])}"
        ),
        key="explorer_student",
        help="Finished runs keep their distilled student, so you can see what is left to learn after training.",
    )
    if choice == "untrained":
        return "an untrained student", example.student_logits, example.logit_matching_distance
    logits, distance = explore.student_view(resources.run_student(choice), example)
    return f"the distilled student of run {choice}", logits, distance


def show_loss_anatomy() -> None:
    who, student_logits, matching_distance = chosen_student()
    parts = explore.loss_anatomy(student_logits, example.teacher_logits, temperature)
    # Full width, one under the other: the gradient chart's three-entry legend needs the room.
    st.plotly_chart(
        viz.gradient_figure(
            names, parts["gradient_unscaled"], parts["gradient_scaled"], parts["logit_matching"], temperature
        ),
        width="stretch",
    )
    st.caption(f"The gradient of the soft loss for {who}, on this example, at T = {temperature:g}.")
    st.markdown(
        "**Why T².** The soft term pulls each student logit by (q_student − q_teacher) / T, and that "
        "difference itself shrinks like 1/T, so without a correction its pull fades like 1/T² as you "
        "raise T. Multiplying by T² keeps it in proportion with the label term, so changing T does not "
        "silently change α."
    )
    st.plotly_chart(
        viz.logit_matching_figure(explore.CURVE_TEMPERATURES, matching_distance, temperature),
        width="stretch",
    )
    st.markdown(
        "At high T the T²-scaled pull tends to (z_student − z_teacher) / K: distillation becomes matching "
        "logits, and at low T the teacher's very negative logits stop mattering."
    )


tabs = st.tabs(
    ["2 · The example at T", "3 · Entropy as T changes", "4 · The dataset at T", "5 · Loss anatomy"],
    key="explorer_tab",
    on_change="rerun",  # only the open tab runs, so a slider move redraws two figures, not nine
)
for tab, render in zip(tabs, (show_example_at_t, show_entropy_curves, show_dataset, show_loss_anatomy), strict=True):
    if tab.open:
        with tab:
            render()
