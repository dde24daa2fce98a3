"""The app's chrome in English and Spanish: page titles and sidebar labels (the home page has its own texts)."""

from __future__ import annotations

import streamlit as st

LANGUAGES = {"en": "English", "es": "Español"}

_CHROME = {
    "en": {
        "home": "Home",
        "explorer": "Temperature explorer",
        "train": "Train",
        "runs": "Runs",
        "teachers": "Teachers",
        "dataset": "Dataset",
        "teacher": "Teacher",
        "no_teacher": "No teacher for this dataset yet: train one on the Teachers page.",
    },
    "es": {
        "home": "Inicio",
        "explorer": "Explorador de temperatura",
        "train": "Entrenar",
        "runs": "Ejecuciones",
        "teachers": "Maestros",
        "dataset": "Conjunto de datos",
        "teacher": "Maestro",
        "no_teacher": "Aún no hay maestro para este conjunto de datos: entrena uno en la página Maestros.",
    },
}


def language() -> str:
    """The language chosen in the sidebar ("en" or "es"); kept in session state across pages."""
    chosen = st.session_state.get("language", "en")
    return chosen if chosen in LANGUAGES else "en"


def label(key: str) -> str:
    """One piece of the app's chrome in the current language."""
    return _CHROME[language()][key]
