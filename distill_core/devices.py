"""Choosing the torch device: "auto" prefers CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name into a torch.device, refusing one this machine does not have."""
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text.startswith("cuda") and torch.cuda.is_available():
        try:
            device = torch.device(text)
        except RuntimeError as error:
            raise ValueError(f"device {name!r} is not a valid CUDA device name: {error}") from None
        if device.index is None or device.index < torch.cuda.device_count():
            return device
    if text == "mps" and torch.backends.mps.is_available():
        return torch.device("mps")
    raise ValueError(f"device {name!r} is not available on this machine; use 'auto' or 'cpu'")
