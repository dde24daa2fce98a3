"""Architecture registry: spec strings such as "cnn", "cnn-small" or "mlp:800-800" become torch modules.

Every model normalises its [0, 1] pixel input with the dataset's mean and std itself, so a checkpoint plus its
metadata is all that is needed to classify a raw image. The spec string is what checkpoints, configs and the CLI
store, so it is parsed in exactly one place (`parse_spec`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import torch
from torch import nn

from .data import DatasetInfo

MAX_HIDDEN_UNITS = 8192
MAX_HIDDEN_LAYERS = 8
_MLP_PATTERN = re.compile(r"^mlp:(\d+(?:-\d+)*)$")

ARCHITECTURES = {
    "cnn": "teacher CNN: two 3x3 conv blocks (32, 64 channels) + 128-unit dense layer, dropout",
    "cnn-small": "student CNN: two 3x3 conv blocks (8, 16 channels) + linear head",
    "mlp:H1-H2-...": "fully connected ReLU student, e.g. mlp:800-800 (Hinton's student) or mlp:30",
}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed architecture spec: its kind ("cnn", "cnn-small", "mlp") and hidden sizes for MLPs."""

    kind: str
    hidden: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.kind == "mlp":
            return "mlp:" + "-".join(str(units) for units in self.hidden)
        return self.kind


def parse_spec(spec: str) -> ModelSpec:
    """Parse an architecture spec string, raising ValueError that lists the valid forms."""
    if not isinstance(spec, str):
        raise ValueError(f"student spec must be a string such as 'mlp:800-800', got {type(spec).__name__}")
    text = spec.strip().lower()
    if text in ("cnn", "cnn-small"):
        return ModelSpec(text)
    match = _MLP_PATTERN.match(text)
    if match is None:
        raise ValueError(
            f"unknown model spec {spec!r}; use 'cnn', 'cnn-small' or 'mlp:H1-H2-...' such as 'mlp:800-800'"
        )
    hidden = tuple(int(units) for units in match.group(1).split("-"))
    if len(hidden) > MAX_HIDDEN_LAYERS or not all(1 <= units <= MAX_HIDDEN_UNITS for units in hidden):
        raise ValueError(
            f"model spec {spec!r} is out of range; use 1 to {MAX_HIDDEN_LAYERS} hidden layers "
            f"of 1 to {MAX_HIDDEN_UNITS} units"
        )
    return ModelSpec("mlp", hidden)


class Normalize(nn.Module):
    """Standardise pixels with fixed per-channel statistics (buffers, so they travel with the state_dict)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        # (1, C, 1, 1) so they broadcast over (batch, C, H, W)
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    # Each block halves H and W: 28 -> 14 -> 7 (MNIST) or 32 -> 16 -> 8 (CIFAR-10).
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2))


def _cnn(info: DatasetInfo, widths: tuple[int, int], dense: int | None, dropout: float) -> nn.Sequential:
    channels, height, width = info.input_shape
    flat = widths[1] * (height // 4) * (width // 4)
    head: list[nn.Module] = [nn.Flatten(), nn.Dropout(dropout)]
    if dense is None:
        head.append(nn.Linear(flat, info.num_classes))
    else:
        head += [nn.Linear(flat, dense), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dense, info.num_classes)]
    return nn.Sequential(
        Normalize(info.mean, info.std),
        _conv_block(channels, widths[0]),
        _conv_block(widths[0], widths[1]),
        *head,
    )


def _mlp(info: DatasetInfo, hidden: tuple[int, ...]) -> nn.Sequential:
    sizes = (_input_size(info), *hidden)
    layers: list[nn.Module] = [Normalize(info.mean, info.std), nn.Flatten()]
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], info.num_classes))
    return nn.Sequential(*layers)


def _input_size(info: DatasetInfo) -> int:
    channels, height, width = info.input_shape
    return channels * height * width


def build_model(spec: str | ModelSpec, info: DatasetInfo) -> nn.Module:
    """Build a freshly initialised model for a dataset; the seed is the caller's business."""
    parsed = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    if parsed.kind == "cnn":
        return _cnn(info, widths=(32, 64), dense=128, dropout=0.5)
    if parsed.kind == "cnn-small":
        return _cnn(info, widths=(8, 16), dense=None, dropout=0.0)
    return _mlp(info, parsed.hidden)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


@torch.no_grad()
def inference_seconds_per_example(
    model: nn.Module, example_shape: tuple[int, ...], batch_size: int = 256, repeats: int = 5
) -> float:
    """Median wall time of one batched forward pass, divided by the batch size (eval mode, no grad)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    batch = torch.rand((batch_size, *example_shape), device=device)
    model(batch)  # warm-up: first calls pay for allocation and kernel selection
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        timings.append(time.perf_counter() - start)
    model.train(was_training)
    return sorted(timings)[len(timings) // 2] / batch_size


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits (N, K) for images (N, C, H, W), in eval mode (dropout off) and without autograd."""
    was_training = model.training
    model.eval()
    chunks = [model(images[start : start + batch_size]) for start in range(0, len(images), batch_size)]
    model.train(was_training)
    return torch.cat(chunks)
