"""Home: what distillation is (the teacher who hesitated), the loss in one line, and a 2-minute demo path."""

import streamlit as st

TEXT = {
    "en": {
        "title": "Distill Explorer",
        "tagline": "See knowledge distillation work: a small student learns from a big teacher's *hesitations*.",
        "story_header": "The teacher who hesitated",
        "story": (
            "A student asks a teacher with years of experience: *is an SVM a probabilistic model?* "
            "She answers **“no”**, but for a moment she almost said **“it depends”**, because Platt "
            "scaling can turn an SVM's scores into probabilities.\n\n"
            "A new teacher who only copies her answer learns “no”. One who also sees her hesitation learns "
            "more: that “it depends” is much closer to the truth than “yes”. **That hesitation is the "
            "knowledge.**\n\n"
            "A trained network hesitates too: its softmax gives tiny probabilities to the wrong classes that "
            "look plausible (this 7 could almost be a 1). Dividing its logits by a **temperature** T "
            "> 1 makes "
            "those tiny probabilities visible, and the student is trained to match them."
        ),
        "loss_header": "The loss in one line",
        "loss_reading": (
            "*t*: teacher logits, *s*: student logits, *y*: the true label. The first term pulls the student "
            "toward the teacher's softened answers, the second toward the label; α balances them, and T² "
            "keeps the first term's pull the same size whatever T you choose."
        ),
        "pages_header": "What each page is for",
        "pages": {
            "views/explorer.py": (
                ":material/thermostat:",
                "Temperature explorer",
                "slide T and watch a teacher's hesitation appear.",
            ),
            "views/train.py": (
                ":material/model_training:",
                "Train",
                "train a baseline and a distilled student side by side.",
            ),
            "views/runs.py": (":material/monitoring:", "Runs", "compare finished runs, class by class."),
            "views/teachers.py": (":material/school:", "Teachers", "train, import or inspect the teachers."),
        },
        "demo_header": "Try this in 2 minutes",
        "demo": (
            "1. **Temperature explorer**: pick a digit and move T from 1 to 8. Near-miss classes, "
            "invisible at "
            "T = 1, get real probability.\n"
            "2. **Train**: leave digit **3** out of the student's training data, set T = 8 and α = 1, "
            "and start.\n"
            "3. **Runs**: look at class 3. The baseline never saw a 3 and gets none right; the distilled "
            "student recognises most of them, learned only from the teacher's hesitations on other digits."
        ),
    },
    "es": {
        "title": "Distill Explorer",
        "tagline": "Mira cómo funciona la destilación: un estudiante pequeño aprende de las *dudas* de un "
        "maestro grande.",
        "story_header": "La profesora que dudó",
        "story": (
            "Un estudiante le pregunta a una profesora con años de experiencia: *¿una SVM es un modelo "
            "probabilístico?* Ella responde **“no”**, pero por un instante estuvo a punto de decir "
            "**“depende”**, "
            "porque el escalado de Platt puede convertir los puntajes de una SVM en probabilidades.\n\n"
            "Un profesor nuevo que solo copia su respuesta aprende “no”. Uno que además ve su duda "
            "aprende más: "
            "que “depende” está mucho más cerca de la verdad que “sí”. **Esa duda es el conocimiento.**\n\n"
            "Una red entrenada también duda: su softmax da probabilidades diminutas a las clases incorrectas "
            "que parecen plausibles (este 7 casi podría ser un 1). Dividir sus logits por una "
            "**temperatura** "
            "T > 1 hace visibles esas probabilidades, y el estudiante se entrena para imitarlas."
        ),
        "loss_header": "La pérdida en una línea",
        "loss_reading": (
            "*t*: logits del maestro, *s*: logits del estudiante, *y*: la etiqueta verdadera. El "
            "primer término "
            "acerca al estudiante a las respuestas suavizadas del maestro y el segundo a la etiqueta; α los "
            "equilibra, y T² mantiene el peso del primer término sin importar qué T elijas."
        ),
        "pages_header": "Para qué sirve cada página",
        "pages": {
            "views/explorer.py": (
                ":material/thermostat:",
                "Explorador de temperatura",
                "mueve T y observa cómo aparece la duda del maestro.",
            ),
            "views/train.py": (
                ":material/model_training:",
                "Entrenar",
                "entrena un estudiante base y uno destilado lado a lado.",
            ),
            "views/runs.py": (
                ":material/monitoring:",
                "Ejecuciones",
                "compara ejecuciones terminadas, clase por clase.",
            ),
            "views/teachers.py": (":material/school:", "Maestros", "entrena, importa o inspecciona los maestros."),
        },
        "demo_header": "Pruébalo en 2 minutos",
        "demo": (
            "1. **Explorador de temperatura**: elige un dígito y mueve T de 1 a 8. Las clases “casi "
            "correctas”, "
            "invisibles con T = 1, reciben una probabilidad real.\n"
            "2. **Entrenar**: deja el dígito **3** fuera de los datos del estudiante, pon T = 8 y α = "
            "1, e inicia.\n"
            "3. **Ejecuciones**: mira la clase 3. El estudiante base nunca vio un 3 y no acierta ninguno; el "
            "destilado reconoce la mayoría, aprendiendo solo de las dudas del maestro sobre otros dígitos."
        ),
    },
}

LOSS = (
    r"L = \alpha\, T^2\, \mathrm{KL}\big(\mathrm{softmax}(t/T)\;\|\;\mathrm{softmax}(s/T)\big)"
    r" + (1-\alpha)\, \mathrm{CE}(s, y)"
)

text = TEXT.get(st.session_state.get("language", "en"), TEXT["en"])

st.title(text["title"])
st.markdown(text["tagline"])

story, demo = st.columns([3, 2], gap="large")
with story:
    st.subheader(text["story_header"])
    st.markdown(text["story"])
    st.subheader(text["loss_header"])
    st.latex(LOSS)
    st.caption(text["loss_reading"])
with demo:
    st.subheader(text["demo_header"])
    st.markdown(text["demo"])

st.subheader(text["pages_header"])
for column, (page, (icon, label, purpose)) in zip(st.columns(len(text["pages"])), text["pages"].items(), strict=True):
    column.page_link(page, label=f"**{label}**", icon=icon)
    column.caption(purpose)
