"""Where Distill Explorer keeps its files: datasets, teachers, caches and the run store.

One directory holds everything. The precedence is: an explicit argument (the CLI's --data-dir),
then the DISTILL_HOME environment variable, then a per-user default.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "DISTILL_HOME"


def data_home(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the data directory, creating it if needed."""
    if override is not None:
        root = Path(override)
    elif os.environ.get(ENV_VAR):
        root = Path(os.environ[ENV_VAR])
    else:
        # XDG-style default; falls back to ~/.local/share on every POSIX system.
        base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
        root = Path(base) / "distill-explorer"
    root = root.expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str, override: str | os.PathLike[str] | None = None) -> Path:
    """A named folder inside the data directory (datasets, teachers, cache, uploads)."""
    path = data_home(override) / name
    path.mkdir(parents=True, exist_ok=True)
    return path
