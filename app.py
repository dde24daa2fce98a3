"""Distill Explorer: the router. It sets up the page, draws the shared sidebar and runs the chosen page."""

import streamlit as st

from ui.errors import friendly_errors
from ui.i18n import label
from ui.sidebar import render_sidebar

st.set_page_config(page_title="Distill Explorer", page_icon=":material/school:", layout="wide")

ICONS = {
    "home": ":material/home:",
    "explorer": ":material/thermostat:",
    "train": ":material/model_training:",
    "runs": ":material/monitoring:",
    "teachers": ":material/school:",
}
# Titles follow the sidebar's language; url paths stay the file names, so links work in both languages.
pages = [
    st.Page(f"views/{name}.py", title=label(name), icon=icon, default=name == "home") for name, icon in ICONS.items()
]
navigation = st.navigation(pages)
# The safety net for every page: a bad value or an unusable run store becomes st.error, never a traceback.
with friendly_errors():
    render_sidebar()
with friendly_errors():
    navigation.run()
