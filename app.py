"""Distill Explorer: the router. It sets up the page, draws the shared sidebar and runs the chosen page."""

import streamlit as st

from ui.errors import friendly_errors
from ui.sidebar import render_sidebar

st.set_page_config(page_title="Distill Explorer", page_icon=":material/school:", layout="wide")

PAGES = [
    st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("views/explorer.py", title="Temperature explorer", icon=":material/thermostat:"),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/runs.py", title="Runs", icon=":material/monitoring:"),
    st.Page("views/teachers.py", title="Teachers", icon=":material/school:"),
]

navigation = st.navigation(PAGES)
# The safety net for every page: a bad value or an unusable run store becomes st.error, never a traceback.
with friendly_errors():
    render_sidebar()
with friendly_errors():
    navigation.run()
