"""Streamlit-only glue: the shared sidebar, session state, cached accessors and error display."""
