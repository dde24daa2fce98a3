"""Distill Explorer: the router. It sets up the page, draws the shared sidebar and runs the chosen page."""

import streamlit as st

from ui.sidebar import render_sidebar

st.set_page_config(page_title="Distill Explorer", page_icon="🎓", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/explorer.py", title="Temperature explorer", icon="🌡️"),
    st.Page("pages/train.py", title="Train", icon="🏃"),
    st.Page("pages/runs.py", title="Runs", icon="📊"),
    st.Page("pages/teachers.py", title="Teachers", icon="🧑‍🏫"),
]

navigation = st.navigation(PAGES)
render_sidebar()
navigation.run()
