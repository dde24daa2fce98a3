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
from ui.i18n import language
from ui.state import selection

TEXT = {
    "en": {
        "title": "Temperature explorer",
        "caption": (
            "Raise the temperature and the teacher's hesitations become visible: that is what a student learns from."
        ),
        "no_teacher": "This dataset has no teacher yet. Train or import one on the **Teachers** page, then come back.",
        "go_teachers": "Go to Teachers",
        "loading": "Loading {dataset} with teacher {teacher}",
        "pick_header": "1 · Pick an example",
        "pick_tabs": ["By number", "By class", "Random", "Most ambiguous", "Upload your own"],
        "index_label": "Test example number (0 to {last})",
        "class_label": "Class",
        "nth_label": "Which one (1 = the first in the test set)",
        "random_button": "Show a random test example",
        "ambiguous_caption": "The test examples where the teacher's answer at T = 1 has the highest entropy.",
        "ambiguous_label": "Most ambiguous for the teacher",
        "ambiguous_option": "#{index}: labelled {label}, the teacher says {answer}",
        "upload_label": "A PNG or JPEG of one handwritten digit or object",
        "reading_image": "Reading your image",
        "temperature_label": "Temperature T (log scale: each step multiplies T by about 1.3)",
        "entropy_metric": "Entropy at T",
        "entropy_value": "{entropy:.3f} nats",
        "share_metric": "Share of the maximum (log K)",
        "answer": (
            "At T = {temperature} the teacher answers **{answer}** ({probability}) and hesitates toward {runners_up}."
        ),
        "entropy_caption": (
            "Entropy never falls as T rises: low T is the teacher's bare answer, very high T says "
            "nothing (uniform). Useful temperatures sit on the slope in between."
        ),
        "animation_caption": (
            "Press play: the same logits, divided by a growing T. The order of the classes never changes."
        ),
        "dataset_caption": "Averaged over the {count} test examples; click a class in the legend to hide it.",
        "hide_diagonal": "Hide the diagonal (the correct class)",
        "similar_header": "**Classes the teacher finds most alike**",
        "smoothing_caption": (
            "Label smoothing at the same entropy spreads the doubt evenly over every wrong class. It cannot say "
            "that this example looks like one particular other class; the teacher's soft targets can, and "
            "that is the extra knowledge a distilled student gets."
        ),
        "student_label": "Student",
        "untrained_option": "untrained {architecture} (fixed seed): its first push from this example",
        "trained_option": "trained: run {run}",
        "student_help": (
            "Finished runs keep their distilled student, so you can see what is left to learn after training."
        ),
        "untrained_who": "an untrained student",
        "trained_who": "the distilled student of run {run}",
        "gradient_caption": "The gradient of the soft loss for {who}, on this example, at T = {temperature}.",
        "why_t_squared": (
            "**Why T².** The soft term pulls each student logit by (q_student − q_teacher) / T, and that "
            "difference itself shrinks like 1/T, so without a correction its pull fades like 1/T² as you "
            "raise T. Multiplying by T² keeps it in proportion with the label term, so changing T does not "
            "silently change α."
        ),
        "logit_matching": (
            "At high T the T²-scaled pull tends to (z_student − z_teacher) / K: distillation becomes matching "
            "logits, and at low T the teacher's very negative logits stop mattering."
        ),
        "view_tabs": ["2 · The example at T", "3 · Entropy as T changes", "4 · The dataset at T", "5 · Loss anatomy"],
    },
    "es": {
        "title": "Explorador de temperatura",
        "caption": "Sube la temperatura y las dudas del maestro se vuelven visibles: de eso aprende un estudiante.",
        "no_teacher": (
            "Este conjunto de datos aún no tiene maestro. Entrena o importa uno en la página **Maestros** "
            "y vuelve aquí."
        ),
        "go_teachers": "Ir a Maestros",
        "loading": "Cargando {dataset} con el maestro {teacher}",
        "pick_header": "1 · Elige un ejemplo",
        "pick_tabs": ["Por número", "Por clase", "Al azar", "Los más ambiguos", "Sube tu imagen"],
        "index_label": "Número del ejemplo de prueba (de 0 a {last})",
        "class_label": "Clase",
        "nth_label": "Cuál (1 = el primero del conjunto de prueba)",
        "random_button": "Mostrar un ejemplo de prueba al azar",
        "ambiguous_caption": (
            "Los ejemplos de prueba en los que la respuesta del maestro con T = 1 tiene la mayor entropía."
        ),
        "ambiguous_label": "Los más ambiguos para el maestro",
        "ambiguous_option": "#{index}: etiqueta {label}, el maestro dice {answer}",
        "upload_label": "Un PNG o JPEG de un solo dígito escrito a mano o de un objeto",
        "reading_image": "Leyendo tu imagen",
        "temperature_label": "Temperatura T (escala logarítmica: cada paso multiplica T por 1.3 aproximadamente)",
        "entropy_metric": "Entropía con T",
        "entropy_value": "{entropy:.3f} nats",
        "share_metric": "Fracción del máximo (log K)",
        "answer": (
            "Con T = {temperature} el maestro responde **{answer}** ({probability}) y sus dudas apuntan a {runners_up}."
        ),
        "entropy_caption": (
            "La entropía nunca baja cuando T sube: con T baja solo queda la respuesta del maestro, y con T muy "
            "alta ya no dice nada (uniforme). Las temperaturas útiles están en la pendiente intermedia."
        ),
        "animation_caption": (
            "Presiona ▶ Play: los mismos logits, divididos por una T cada vez mayor. El orden de las clases "
            "nunca cambia."
        ),
        "dataset_caption": (
            "Promedio sobre los {count} ejemplos de prueba; haz clic en una clase de la leyenda para ocultarla."
        ),
        "hide_diagonal": "Ocultar la diagonal (la clase correcta)",
        "similar_header": "**Clases que el maestro considera más parecidas**",
        "smoothing_caption": (
            "El suavizado de etiquetas con la misma entropía reparte la duda por igual entre todas las clases "
            "incorrectas. No puede decir que este ejemplo se parece a otra clase en particular; los objetivos "
            "suaves del maestro sí, y ese es el conocimiento extra que recibe un estudiante destilado."
        ),
        "student_label": "Estudiante",
        "untrained_option": "{architecture} sin entrenar (semilla fija): el primer empujón que recibe de este ejemplo",
        "trained_option": "entrenado: ejecución {run}",
        "student_help": (
            "Las ejecuciones terminadas guardan su estudiante destilado, así puedes ver qué le falta aprender "
            "después del entrenamiento."
        ),
        "untrained_who": "un estudiante sin entrenar",
        "trained_who": "el estudiante destilado de la ejecución {run}",
        "gradient_caption": "El gradiente de la pérdida suave para {who}, en este ejemplo, con T = {temperature}.",
        "why_t_squared": (
            "**Por qué T².** El término suave empuja cada logit del estudiante en (q_student − q_teacher) / T, "
            "y esa diferencia a su vez se achica como 1/T; sin corrección, su empuje se desvanece como 1/T² "
            "al subir T. Multiplicar por T² lo mantiene en proporción con el término de la etiqueta, así que "
            "cambiar T no cambia α sin que te des cuenta."
        ),
        "logit_matching": (
            "Con T alta, el empuje escalado por T² tiende a (z_student − z_teacher) / K: destilar se vuelve "
            "igualar logits, y con T baja los logits muy negativos del maestro dejan de importar."
        ),
        "view_tabs": [
            "2 · El ejemplo con T",
            "3 · La entropía según T",
            "4 · El conjunto de datos con T",
            "5 · Anatomía de la pérdida",
        ],
    },
}

text = TEXT[language()]

st.title(text["title"])
st.caption(text["caption"])

chosen = selection()
if not chosen.teacher:  # no teacher for this dataset yet
    st.info(text["no_teacher"])
    st.page_link("views/teachers.py", label=text["go_teachers"], icon=":material/school:")
    st.stop()

splits = loaded = None
with friendly_errors(text["loading"].format(dataset=chosen.dataset, teacher=chosen.teacher)):
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

with st.expander(text["pick_header"], expanded=True):
    by_index, by_class, at_random, unsure, upload = st.tabs(text["pick_tabs"])
    with by_index:
        st.number_input(
            text["index_label"].format(last=len(test) - 1),
            0,
            len(test) - 1,
            key="explorer_index",
            on_change=lambda: pick(st.session_state["explorer_index"]),
        )
    with by_class:
        left, right = st.columns(2)
        left.selectbox(
            text["class_label"],
            range(len(names)),
            format_func=names.__getitem__,
            key="explorer_class",
            on_change=pick_nth_of_class,
        )
        right.number_input(
            text["nth_label"],
            min_value=1,
            key="explorer_nth",
            on_change=pick_nth_of_class,
        )
    with at_random:
        st.button(text["random_button"], icon=":material/casino:", key="explorer_random", on_click=pick_random)
    with unsure:
        st.caption(text["ambiguous_caption"])
        st.radio(
            text["ambiguous_label"],
            list(ambiguous),
            index=None,
            key="explorer_ambiguous",
            format_func=lambda i: text["ambiguous_option"].format(
                index=i, label=names[int(test.labels[i])], answer=names[ambiguous[i]]
            ),
            on_change=lambda: pick(st.session_state["explorer_ambiguous"]),
        )
    with upload:
        uploaded = st.file_uploader(
            text["upload_label"],
            type=["png", "jpg", "jpeg"],
            key="explorer_upload",
        )
        if uploaded is not None and st.session_state.get("explorer_upload_id") != uploaded.file_id:
            with friendly_errors(text["reading_image"]):
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
    text["temperature_label"],
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
    # Part of the image's title, which stays in English like every figure title from distill_core.viz.
    label_text = "no label (your image)" if example.label is None else f"labelled {names[example.label]}"
    picture.plotly_chart(
        example_figure("image", lambda: viz.image_figure(example.pixels, f"{example.title}, {label_text}")),
        width="stretch",
    )
    picture.metric(text["entropy_metric"], text["entropy_value"].format(entropy=now["entropy"]))
    picture.metric(text["share_metric"], f"{now['entropy_fraction']:.0%}")
    bars.plotly_chart(
        viz.soft_targets_figure(names, now["soft_targets"], now["soft_targets_at_1"], example.label, temperature),
        width="stretch",
        key="soft_targets",
    )
    runners_up = ", ".join(f"**{names[k]}** ({percent(p)})" for k, p in now["hesitations"])
    answer = names[now["predicted"]]
    probability = percent(now["soft_targets"][now["predicted"]])
    bars.markdown(
        text["answer"].format(
            temperature=f"{temperature:g}", answer=answer, probability=probability, runners_up=runners_up
        )
    )


def show_entropy_curves() -> None:
    left, right = st.columns(2)
    left.plotly_chart(
        viz.entropy_curve_figure(explore.CURVE_TEMPERATURES, example.entropy_curve, temperature, len(names)),
        width="stretch",
    )
    left.caption(text["entropy_caption"])
    animation = example_figure(
        "animation",
        lambda: viz.softmax_animation_figure(names, explore.SLIDER_TEMPERATURES, example.animation_frames),
    )
    right.plotly_chart(animation, width="stretch")
    right.caption(text["animation_caption"])


def show_dataset() -> None:
    st.plotly_chart(
        viz.dataset_entropy_figure(explore.CURVE_TEMPERATURES, overall_entropy, class_entropy, names, temperature),
        width="stretch",
    )
    st.caption(text["dataset_caption"].format(count=f"{len(test):,}"))
    matrix = explore.dark_knowledge(test_logits, test.labels, temperature)
    heatmap, pairs = st.columns([3, 1])
    hide = heatmap.toggle(text["hide_diagonal"], value=True, key="explorer_hide_diagonal")
    heatmap.plotly_chart(viz.dark_knowledge_figure(matrix, names, hide, temperature), width="stretch")
    pairs.markdown(text["similar_header"])
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
    st.caption(text["smoothing_caption"])


def chosen_student() -> tuple[str, torch.Tensor, np.ndarray]:
    """The student the loss anatomy asks: the untrained one, or a finished run's distilled student."""
    trained = {r.run_id: r for r in runs.runs_with_students(resources.store_or_stop(), chosen.dataset)[:20]}
    choice = st.selectbox(
        text["student_label"],
        ["untrained", *trained],
        format_func=lambda key: (
            text["untrained_option"].format(architecture=explore.DEFAULT_STUDENT)
            if key == "untrained"
            else text["trained_option"].format(run=reports.run_label(trained[key]))
        ),
        key="explorer_student",
        help=text["student_help"],
    )
    if choice == "untrained":
        return text["untrained_who"], example.student_logits, example.logit_matching_distance
    logits, distance = explore.student_view(resources.run_student(choice), example)
    return text["trained_who"].format(run=choice), logits, distance


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
    st.caption(text["gradient_caption"].format(who=who, temperature=f"{temperature:g}"))
    st.markdown(text["why_t_squared"])
    st.plotly_chart(
        viz.logit_matching_figure(explore.CURVE_TEMPERATURES, matching_distance, temperature),
        width="stretch",
    )
    st.markdown(text["logit_matching"])


def keep_open_tab_across_languages() -> None:
    """The open tab is stored by its label: after a language switch, open the same tab under its new label."""
    stored = st.session_state.get("explorer_tab")
    for labels in (TEXT[other]["view_tabs"] for other in TEXT):
        if stored in labels and stored not in text["view_tabs"]:
            st.session_state["explorer_tab"] = text["view_tabs"][labels.index(stored)]


keep_open_tab_across_languages()
tabs = st.tabs(
    text["view_tabs"],
    key="explorer_tab",
    on_change="rerun",  # only the open tab runs, so a slider move redraws two figures, not nine
)
for tab, render in zip(tabs, (show_example_at_t, show_entropy_curves, show_dataset, show_loss_anatomy), strict=True):
    if tab.open:
        with tab:
            render()
