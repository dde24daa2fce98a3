"""Training a teacher: a CNN with dropout and +-2 px jitter, saved as a checkpoint with full provenance.

The metadata records what a reader needs to trust the number: dataset and split, architecture, validation and test
accuracy (last epoch), seed, the command that produced it and the library versions.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .data import get_info, load_dataset, random_shift
from .devices import resolve_device
from .models import build_model, count_parameters, parse_spec
from .teachers import save_checkpoint, teachers_dir, validate_name
from .training import EventCallback, StopCheck, accuracy, check_int, make_optimizer, max_epochs
from .versions import library_versions


@dataclass(frozen=True)
class TeacherConfig:
    """How to train a teacher. Validated on construction."""

    dataset: str = "mnist5k"
    name: str = ""  # file name in the teachers folder; "" means "<dataset>-<architecture>-s<seed>"
    architecture: str = "cnn"
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 0
    shift_pixels: int = 2  # Hinton's teacher saw inputs jittered by up to 2 pixels
    device: str = "auto"

    def __post_init__(self) -> None:
        get_info(self.dataset)
        parse_spec(self.architecture)
        check_int("epochs", self.epochs, 1, max_epochs())
        check_int("batch_size", self.batch_size, 1, 1_000_000)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("shift_pixels", self.shift_pixels, 0, 8)
        if not (isinstance(self.lr, int | float) and 0 < self.lr <= 10):
            raise ValueError(f"lr must be a number in (0, 10], got {self.lr!r}")
        validate_name(self.resolved_name)

    @property
    def resolved_name(self) -> str:
        return self.name or f"{self.dataset}-{self.architecture.replace(':', '-')}-s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def train_teacher(
    config: TeacherConfig,
    *,
    on_event: EventCallback | None = None,
    should_stop: StopCheck | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    command: str | None = None,
) -> tuple[Path | None, dict[str, Any]]:
    """Train, evaluate and save a teacher; returns (checkpoint path or None if cancelled, metadata)."""
    device = resolve_device(config.device)
    splits = load_dataset(config.dataset, data_dir=data_dir, device=device)
    torch.manual_seed(config.seed)
    model = build_model(config.architecture, splits.info).to(device)
    optimizer = make_optimizer("adam", model.parameters(), config.lr, device)
    generator = torch.Generator().manual_seed(config.seed)
    train = splits.train
    start = time.perf_counter()
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator).to(device)
        for batch in order.split(config.batch_size):
            if should_stop is not None and should_stop():
                return None, {}
            images = random_shift(train.images[batch], config.shift_pixels, generator)  # (batch, C, H, W)
            loss = F.cross_entropy(model(images), train.labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        event = {
            "epoch": epoch,
            "epochs": config.epochs,
            "loss": loss.item(),
            "val_accuracy": accuracy(model, splits.val),
            "elapsed_seconds": time.perf_counter() - start,
        }
        if on_event is not None:
            on_event(event)
    metadata = {
        "name": config.resolved_name,
        "origin": "trained",
        "dataset": config.dataset,
        "split": f"train {len(train)} / val {len(splits.val)} / test {len(splits.test)} (fixed, stratified)",
        "architecture": config.architecture,
        "parameters": count_parameters(model),
        "val_accuracy": accuracy(model, splits.val),
        "test_accuracy": accuracy(model, splits.test),
        "seed": config.seed,
        "config": config.to_dict(),
        "train_seconds": time.perf_counter() - start,
        "command": command or " ".join([Path(sys.executable).name, *sys.argv]),
        "versions": library_versions(),
    }
    path = Path(output) if output else teachers_dir(data_dir) / f"{config.resolved_name}.pt"
    return save_checkpoint(path, model, metadata), metadata
