"""Turning library errors into `st.error` messages: a page never shows a traceback for bad input."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from distill_core.store import StoreError

log = logging.getLogger("distill_explorer")


@contextmanager
def friendly_errors(action: str = "") -> Iterator[None]:
    """Show ValueError/StoreError as a clear message; log (but do not show) anything unexpected."""
    prefix = f"{action}: " if action else ""
    try:
        yield
    except (ValueError, StoreError) as error:
        st.error(f"{prefix}{error}")
    except Exception:
        log.exception("unexpected error %s", action)
        st.error(f"{prefix}something went wrong on our side. Reload the page; if it persists, check the server log.")
