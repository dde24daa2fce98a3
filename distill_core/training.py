"""Paired training: a hard-label baseline and a distilled student, trained in lockstep.

The two students start from one initialisation (the distilled one is a deep copy), see the same minibatch indices
in the same order with the same augmentation, and differ only in their loss. The data split lives on the device as
tensors and batches are taken by index; teacher logits come from the cache (or, with augmentation, from a teacher
forward pass on the very same augmented batch). Progress is reported through `on_event` callbacks with plain dicts,
and `should_stop` is polled every step for cooperative cancellation.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .data import DatasetSplits, Split, get_info, load_dataset, random_shift, transfer_indices
from .devices import DEVICE_CHOICES, resolve_device
from .models import build_model, count_parameters, inference_seconds_per_example, parse_spec, predict_logits
from .teachers import Teacher, default_teacher, load_teacher, teacher_logits
from .temperature import kd_loss_parts, validate_alpha, validate_temperature

OPTIMIZERS = ("adam", "sgd")
DEFAULT_MAX_EPOCHS = 200
EventCallback = Callable[[dict[str, Any]], None]
StopCheck = Callable[[], bool]


def max_epochs() -> int:
    """The largest epoch count a config may ask for (env DISTILL_MAX_EPOCHS on a shared server)."""
    return int(os.environ.get("DISTILL_MAX_EPOCHS", DEFAULT_MAX_EPOCHS))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a paired run. Validated on construction; the CLI, store and JSON all use it."""

    dataset: str = "mnist5k"  # registry name, see distill_core.data.DATASETS
    teacher: str = ""  # teacher name; "" means the dataset's default teacher
    student: str = "mlp:800-800"  # architecture spec for both students
    temperature: float = 4.0  # softmax temperature T of the soft term
    alpha: float = 0.9  # weight of the soft term; 1 - alpha weights the hard-label cross-entropy
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" or "sgd" (momentum 0.9)
    seed: int = 0  # initial weights, batch order and augmentation
    train_fraction: float = 1.0  # stratified share of the train split used as the transfer set
    omit_classes: tuple[int, ...] = ()  # classes removed from the transfer set (Hinton's missing 3s)
    only_classes: tuple[int, ...] = ()  # keep only these classes in the transfer set
    shift_pixels: int = 0  # random +-pixel jitter of student inputs; the teacher sees the same shifted batch
    device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda", "mps"
    eval_every_steps: int = 200  # extra progress events inside epochs longer than this many steps

    def __post_init__(self) -> None:
        object.__setattr__(self, "omit_classes", tuple(sorted({int(c) for c in self.omit_classes})))
        object.__setattr__(self, "only_classes", tuple(sorted({int(c) for c in self.only_classes})))
        info = get_info(self.dataset)
        parse_spec(self.student)
        validate_temperature(self.temperature)
        validate_alpha(self.alpha)
        check_int("epochs", self.epochs, 1, max_epochs())
        check_int("batch_size", self.batch_size, 1, 1_000_000)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("shift_pixels", self.shift_pixels, 0, 8)
        check_int("eval_every_steps", self.eval_every_steps, 1, 10**9)
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ValueError(f"lr must be a number in (0, 10], got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if str(self.device).split(":")[0] not in DEVICE_CHOICES:
            raise ValueError(f"device must be one of {', '.join(DEVICE_CHOICES)}, got {self.device!r}")
        # Class filters are checked against the registry here so a bad config fails before any data loads.
        labels = torch.arange(info.num_classes)
        transfer_indices(
            labels,
            fraction=self.train_fraction,
            omit_classes=self.omit_classes,
            only_classes=self.only_classes,
            num_classes=info.num_classes,
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["omit_classes"] = list(self.omit_classes)
        data["only_classes"] = list(self.only_classes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        return cls(**data)

    @property
    def unseen_classes(self) -> tuple[int, ...]:
        """Classes the students never see a label or example of (what bias correction is for)."""
        if self.omit_classes:
            return self.omit_classes
        if self.only_classes:
            num_classes = get_info(self.dataset).num_classes
            return tuple(c for c in range(num_classes) if c not in self.only_classes)
        return ()


def check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")


@dataclass
class PairResult:
    """What a paired run produced: status, final metrics of both students, history and timing."""

    status: str  # "completed", "cancelled" or "diverged"
    config: TrainConfig
    teacher: dict[str, Any]
    baseline: dict[str, Any] = field(default_factory=dict)
    distilled: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    students: dict[str, nn.Module] = field(default_factory=dict)  # the trained models, for saving; not metrics

    def metrics(self) -> dict[str, Any]:
        """The final metrics as one plain dict (what the run store keeps)."""
        return {"teacher": self.teacher, "baseline": self.baseline, "distilled": self.distilled}


def make_optimizer(name: str, parameters: Any, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The optimizers the config offers: Adam, or SGD with momentum 0.9.

    On CPU and CUDA the fused kernels update every parameter in one pass: for a 2x800 MLP on 2 CPU cores that cuts
    the optimizer step from about 7 ms to under 1 ms, a seventh of a training step.
    """
    fused = device.type in ("cpu", "cuda")
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, fused=fused)
    return torch.optim.Adam(parameters, lr=lr, fused=fused)


def train_pair(
    config: TrainConfig,
    *,
    on_event: EventCallback | None = None,
    should_stop: StopCheck | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> PairResult:
    """Train the baseline and the distilled student in lockstep and return their final metrics."""
    device = resolve_device(config.device)
    splits = load_dataset(config.dataset, data_dir=data_dir, device=device)
    teacher = load_teacher(config.teacher or default_teacher(config.dataset, data_dir), data_dir)
    _check_teacher_fits(teacher, config)
    loop = _PairLoop(config, splits, teacher, device, data_dir)
    return loop.run(on_event or (lambda event: None), should_stop or (lambda: False))


def _check_teacher_fits(teacher: Teacher, config: TrainConfig) -> None:
    if teacher.info.name != config.dataset:
        raise ValueError(
            f"teacher {teacher.name!r} was trained on {teacher.info.name}, not {config.dataset}; "
            "pick a teacher for this dataset"
        )


class _PairLoop:
    """The state of one paired run; `run` reads top to bottom: setup, epochs of lockstep steps, final metrics."""

    def __init__(
        self,
        config: TrainConfig,
        splits: DatasetSplits,
        teacher: Teacher,
        device: torch.device,
        data_dir: str | os.PathLike[str] | None,
    ) -> None:
        self.config, self.splits, self.teacher, self.device = config, splits, teacher, device
        self.teacher_model = teacher.model.to(device).eval()
        self.train_teacher_logits = teacher_logits(teacher, splits, "train", data_dir)  # (N_train, K)
        self.transfer = transfer_indices(
            splits.train.labels.cpu(),
            fraction=config.train_fraction,
            omit_classes=config.omit_classes,
            only_classes=config.only_classes,
            num_classes=splits.info.num_classes,
            seed=config.seed,
        ).to(device)  # (N_transfer,) indices into the train split
        if config.batch_size > len(self.transfer):
            raise ValueError(
                f"batch_size {config.batch_size} is larger than the transfer set "
                f"({len(self.transfer)} examples); lower it"
            )
        torch.manual_seed(config.seed)
        self.baseline = build_model(config.student, splits.info).to(device)
        self.distilled = copy.deepcopy(self.baseline)  # identical initial weights, by construction
        self.baseline_opt = make_optimizer(config.optimizer, self.baseline.parameters(), config.lr, device)
        self.distilled_opt = make_optimizer(config.optimizer, self.distilled.parameters(), config.lr, device)
        # Batch order and jitter come from one CPU generator, so they do not depend on the device.
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps_per_epoch = math.ceil(len(self.transfer) / config.batch_size)
        self.history: list[dict[str, Any]] = []

    def run(self, on_event: EventCallback, should_stop: StopCheck) -> PairResult:
        start = time.perf_counter()
        status, step = "completed", 0
        for epoch in range(self.config.epochs):
            status, step = self._epoch(epoch, step, on_event, should_stop, start)
            if status != "completed":
                break
        seconds = time.perf_counter() - start
        # Examples per second through the pair (each example updates both students once).
        timing = {"seconds": seconds, "samples_per_second": self._seen(step) / max(seconds, 1e-9)}
        return self._result(status, timing)

    def _seen(self, steps: int) -> int:
        full_epochs, partial = divmod(steps, self.steps_per_epoch)
        return full_epochs * len(self.transfer) + partial * self.config.batch_size

    def _epoch(
        self, epoch: int, step: int, on_event: EventCallback, should_stop: StopCheck, start: float
    ) -> tuple[str, int]:
        self.baseline.train()
        self.distilled.train()
        order = torch.randperm(len(self.transfer), generator=self.generator).to(self.device)
        sums = torch.zeros(4, device=self.device)  # running loss sums, read only when an event is emitted
        since_event = 0
        for batch_number, batch in enumerate(order.split(self.config.batch_size)):
            if should_stop():
                return "cancelled", step
            sums += self._step(self.transfer[batch])
            step, since_event = step + 1, since_event + 1
            epoch_end = batch_number + 1 == self.steps_per_epoch
            if epoch_end or step % self.config.eval_every_steps == 0:
                event = self._event(epoch + (batch_number + 1) / self.steps_per_epoch, step, sums / since_event)
                event["elapsed_seconds"] = time.perf_counter() - start
                self.history.append(event)
                on_event(event)
                if not all(math.isfinite(event[key]) for key in _LOSS_KEYS):
                    return "diverged", step
                sums.zero_()
                since_event = 0
        return "completed", step

    def _step(self, indices: torch.Tensor) -> torch.Tensor:
        """One lockstep update of both students on the same examples; returns the 4 loss parts (no sync)."""
        images = self.splits.train.images[indices]  # (batch, C, H, W)
        labels = self.splits.train.labels[indices]  # (batch,)
        teacher = self.train_teacher_logits[indices]  # (batch, K), cached: no teacher forward
        if self.config.shift_pixels:
            images = random_shift(images, self.config.shift_pixels, self.generator)
            with torch.no_grad():  # the teacher must judge the same jittered image the students see
                teacher = self.teacher_model(images)
        baseline_loss = F.cross_entropy(self.baseline(images), labels)
        _update(self.baseline_opt, baseline_loss)
        # kd_loss_parts computes the hard term even when alpha = 1 leaves it out of the objective, for the plots.
        parts = kd_loss_parts(self.distilled(images), teacher, labels, self.config.temperature, self.config.alpha)
        _update(self.distilled_opt, parts.total)
        return torch.stack([baseline_loss, parts.hard, parts.soft, parts.total]).detach()

    def _event(self, epoch: float, step: int, mean_losses: torch.Tensor) -> dict[str, Any]:
        losses = mean_losses.tolist()  # the one sync per event
        event: dict[str, Any] = {
            "epoch": round(epoch, 4),
            "step": step,
            "steps_total": self.steps_per_epoch * self.config.epochs,
            **dict(zip(_LOSS_KEYS, losses, strict=True)),
        }
        for name, model in (("baseline", self.baseline), ("distilled", self.distilled)):
            for split in ("val", "test"):
                event[f"{name}_{split}_accuracy"] = accuracy(model, self.splits.split(split))
        return event

    def _result(self, status: str, timing: dict[str, float]) -> PairResult:
        teacher = {
            "name": self.teacher.name,
            "test_accuracy": self.teacher.metadata.get("test_accuracy"),
            "parameters": count_parameters(self.teacher_model),
            "seconds_per_example": _teacher_seconds_per_example(self.teacher, self.device),
        }
        result = PairResult(status, self.config, teacher, history=self.history, timing=timing)
        if status == "diverged":
            result.error = "a loss became NaN or infinite; lower the learning rate"
        if not self.history:
            return result
        result.students = {"baseline": self.baseline, "distilled": self.distilled}
        result.baseline = self._student_metrics(self.baseline)
        result.distilled = self._student_metrics(self.distilled)
        if self.config.unseen_classes:
            result.distilled["bias_corrected"] = bias_corrected_metrics(
                self.distilled, self.splits, self.config.unseen_classes
            )
        return result

    def _student_metrics(self, model: nn.Module) -> dict[str, Any]:
        test = self.splits.test
        predictions = predict_logits(model, test.images).argmax(dim=1)
        confusion = confusion_matrix(test.labels, predictions, self.splits.info.num_classes)
        return {
            "test_accuracy": accuracy(model, test),  # last epoch, never the best epoch on test
            "val_accuracy": accuracy(model, self.splits.val),
            "per_class_accuracy": per_class_accuracy(confusion),
            "confusion_matrix": confusion.tolist(),
            "parameters": count_parameters(model),
            "seconds_per_example": inference_seconds_per_example(model, self.splits.info.input_shape),
        }


_TEACHER_TIMINGS: dict[tuple[str, str], float] = {}


def _teacher_seconds_per_example(teacher: Teacher, device: torch.device) -> float:
    """Timed once per teacher and device: every run of a workshop uses the same few teachers."""
    key = (teacher.content_hash, str(device))
    if key not in _TEACHER_TIMINGS:
        _TEACHER_TIMINGS[key] = inference_seconds_per_example(teacher.model, teacher.info.input_shape)
    return _TEACHER_TIMINGS[key]


_LOSS_KEYS = ("baseline_hard_loss", "distilled_hard_loss", "distilled_soft_loss", "distilled_total_loss")


def _update(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def accuracy(model: nn.Module, split: Split) -> float:
    """Top-1 accuracy of a model on a split, in [0, 1]."""
    predictions = predict_logits(model, split.images).argmax(dim=1)
    return float((predictions == split.labels).float().mean())


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (K, K): rows are true classes, columns predicted classes."""
    flat = labels.long().cpu() * num_classes + predictions.long().cpu()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> list[float]:
    """Recall per true class from a confusion matrix; NaN for classes with no examples."""
    totals = confusion.sum(dim=1).double()
    return (confusion.diagonal().double() / totals).tolist()


BIAS_GRID = torch.arange(-4.0, 16.01, 0.25)  # logit shifts tried on the validation split


def bias_corrected_metrics(model: nn.Module, splits: DatasetSplits, unseen: tuple[int, ...]) -> dict[str, Any]:
    """Hinton's fix for unseen classes: add one logit shift to them, chosen on the validation split only.

    The shift minimises validation cross-entropy (NLL), like temperature scaling: with only ~50 validation
    examples of an unseen class, accuracy is a step function with wide flat tops, while NLL has one clear minimum.
    """
    num_classes = splits.info.num_classes
    mask = torch.zeros(num_classes)
    mask[list(unseen)] = 1.0  # (K,) which logits the shift applies to
    val_logits = predict_logits(model, splits.val.images).cpu()  # (N_val, K)
    val_labels = splits.val.labels.cpu()
    # (G, N_val, K) all shifts at once: a few hundred KB for mnist5k, no Python loop over the grid.
    shifted = val_logits.unsqueeze(0) + BIAS_GRID.view(-1, 1, 1) * mask
    val_nll = F.cross_entropy(shifted.transpose(1, 2), val_labels.expand(len(BIAS_GRID), -1), reduction="none")
    best = int(val_nll.mean(dim=1).argmin())  # (G,) -> index of the lowest mean NLL
    class_bias = (BIAS_GRID[best] * mask).tolist()
    test_logits = predict_logits(model, splits.test.images).cpu() + torch.tensor(class_bias)
    predictions = test_logits.argmax(dim=1)
    confusion = confusion_matrix(splits.test.labels, predictions, num_classes)
    return {
        "class_bias": class_bias,
        "val_accuracy": float((shifted[best].argmax(dim=1) == val_labels).float().mean()),
        "test_accuracy": float((predictions == splits.test.labels.cpu()).float().mean()),
        "per_class_accuracy": per_class_accuracy(confusion),
        "confusion_matrix": confusion.tolist(),
    }


def train_seeds(
    config: TrainConfig,
    seeds: list[int],
    *,
    on_event: EventCallback | None = None,
    should_stop: StopCheck | None = None,
    data_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run the same pair over several seeds; a single run is noise, so report mean +- std of the gain."""
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    results = []
    for seed in seeds:
        result = train_pair(replace(config, seed=seed), on_event=on_event, should_stop=should_stop, data_dir=data_dir)
        if result.status != "completed":
            break
        results.append(result)
    return summarize_seeds(
        [r.config.seed for r in results],
        [r.baseline["test_accuracy"] for r in results],
        [r.distilled["test_accuracy"] for r in results],
    )


def summarize_seeds(seeds: list[int], baseline: list[float], distilled: list[float]) -> dict[str, Any]:
    """Mean and sample standard deviation of baseline, distilled and gain test accuracy across seeds."""
    table = {"baseline": baseline, "distilled": distilled}
    table["gain"] = [d - b for b, d in zip(baseline, distilled, strict=True)]
    summary: dict[str, Any] = {"seeds": list(seeds)}
    for name, values in table.items():
        tensor = torch.tensor(values, dtype=torch.float64)
        std = float(tensor.std()) if len(values) > 1 else 0.0
        summary[name] = {
            "values": values,
            "mean": float(tensor.mean()) if values else float("nan"),
            "std": std,
        }
    return summary
