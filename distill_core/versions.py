"""Library versions recorded with every run and teacher, so a number can be traced to what produced it."""

from __future__ import annotations

import platform
from importlib import metadata

__version__ = "0.1.0"


def library_versions() -> dict[str, str]:
    """Python, torch, torchvision and Distill Explorer versions, read without importing torch."""
    versions = {"python": platform.python_version(), "distill_core": __version__, "platform": platform.platform()}
    for name in ("torch", "torchvision"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
