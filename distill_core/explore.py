"""The temperature explorer's computations: which examples to show and what a temperature does to them.

Tensors in, plain numbers and numpy arrays out, so the explorer page only draws. The math itself lives in
`distill_core.temperature`; this module picks examples, applies those formulas to one example or to a whole
split, and packages what does not depend on T (an `Example`) so that moving the temperature slider only
re-runs softmax on cached logits. A model runs only when an example is chosen: the untrained student once,
and the teacher once for an uploaded image.
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn

from .data import DatasetInfo, Split
from .images import example_to_display, image_to_example
from .models import build_model, predict_logits
from .teachers import Teacher
from .temperature import (
    dark_knowledge_matrix,
    entropy,
    entropy_vs_temperature,
    kd_loss_parts,
    label_smoothing_targets,
    logit_matching_gradient,
    normalized_entropy,
    similar_class_pairs,
    smoothing_for_entropy,
    soft_loss_gradient,
    soft_targets,
    temperature_grid,
    validate_temperature,
)

# Round values, roughly evenly spaced on a log scale (1-1.5-2-2.5-3-4-5-6-8 per decade), for the slider and
# the animation: they include T = 1 (the ordinary softmax) and the usual distillation choices 4, 8 and 20.
SLIDER_TEMPERATURES: tuple[float, ...] = tuple(
    round(step * decade, 2) for decade in (0.1, 1.0, 10.0) for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8)
) + (100.0,)
# A finer log-spaced grid for the curves, so they look smooth; (61,) from 0.1 to 100.
CURVE_TEMPERATURES: tuple[float, ...] = tuple(temperature_grid(0.1, 100.0, 61).tolist())

DEFAULT_STUDENT = "mlp:800-800"  # the Train page's default student, so the gradients shown are the ones it gets


# ---------------------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------------------


def _logits_row(values: Tensor, name: str) -> Tensor:
    """One example's logits as float64 (K,): double precision keeps T * (q_s - q_t) exact at T = 100."""
    row = torch.as_tensor(values).detach().cpu()
    if row.dim() != 1 or row.numel() < 2:
        raise ValueError(f"{name} must be one example's logits, shape (classes,), got {tuple(row.shape)}")
    if not torch.isfinite(row).all():
        raise ValueError(f"{name} must be finite; got NaN or infinite logits")
    return row.double()


def _logits_matrix(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """(N, K) logits and (N,) labels on the CPU, checked to agree."""
    if logits.dim() != 2:
        raise ValueError(f"logits must be (examples, classes), got shape {tuple(logits.shape)}")
    if labels.shape != (logits.shape[0],):
        raise ValueError(
            f"labels must have shape ({logits.shape[0]},), one per row of logits, got {tuple(labels.shape)}"
        )
    return logits.detach().cpu(), labels.detach().cpu().long()


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _temperatures(temperatures: ArrayLike) -> list[float]:
    values = np.asarray(temperatures, dtype=float).reshape(-1).tolist()
    if not values:
        raise ValueError("temperatures must hold at least one temperature, e.g. explore.CURVE_TEMPERATURES")
    return [validate_temperature(value, "temperatures") for value in values]


# ---------------------------------------------------------------------------------------------------------
# Picking examples
# ---------------------------------------------------------------------------------------------------------


def most_ambiguous(logits: Tensor, top: int = 10) -> list[int]:
    """The `top` examples the teacher is least sure about: highest entropy at T = 1 first.

    logits: (N, K) teacher logits of one split; returns indices into it.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (examples, classes), got shape {tuple(logits.shape)}")
    top = _positive_int(top, "top")
    entropies = entropy(soft_targets(logits.detach().cpu(), 1.0))  # (N,)
    return torch.topk(entropies, min(top, len(entropies))).indices.tolist()


def examples_of_class(labels: Tensor, class_index: int) -> list[int]:
    """Indices (in order) of the examples whose label is `class_index`; empty if there are none."""
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D (examples,), got shape {tuple(labels.shape)}")
    return torch.nonzero(labels.detach().cpu() == int(class_index)).flatten().tolist()


def random_example(num_examples: int, seed: int) -> int:
    """A reproducible random index in [0, num_examples): the same seed always gives the same example."""
    num_examples = _positive_int(num_examples, "num_examples")
    generator = torch.Generator().manual_seed(int(seed))
    return int(torch.randint(num_examples, (1,), generator=generator))


# ---------------------------------------------------------------------------------------------------------
# One example at one temperature, and over all temperatures
# ---------------------------------------------------------------------------------------------------------


def example_at_temperature(logits_row: Tensor, temperature: float, hesitations: int = 3) -> dict[str, Any]:
    """What the teacher says about one example at `temperature`, next to what it says at T = 1.

    Returns a dict with
      "soft_targets" (K,) and "soft_targets_at_1" (K,): probabilities at T and at T = 1;
      "entropy": entropy at T in nats; "entropy_fraction": the same as a fraction of log K;
      "predicted": the teacher's top class (the same at every T);
      "hesitations": [(class, probability at T), ...], the largest non-top classes, largest first.
    """
    row = _logits_row(logits_row, "logits_row")
    hesitations = _positive_int(hesitations, "hesitations")
    at_t = soft_targets(row, temperature)  # (K,)
    predicted = int(row.argmax())
    # Softmax keeps the order of the logits, so the runners-up are the same at every T; only their mass grows.
    others = at_t.clone()
    others[predicted] = -1.0
    runners_up = torch.topk(others, min(hesitations, len(row) - 1)).indices.tolist()
    return {
        "soft_targets": at_t.numpy(),
        "soft_targets_at_1": soft_targets(row, 1.0).numpy(),
        "entropy": float(entropy(at_t)),
        "entropy_fraction": float(normalized_entropy(at_t)),
        "predicted": predicted,
        "hesitations": [(k, float(at_t[k])) for k in runners_up],
    }


def entropy_curve(logits_row: Tensor, temperatures: ArrayLike) -> np.ndarray:
    """Entropy in nats of one example's soft targets at each temperature; shape (M,)."""
    row = _logits_row(logits_row, "logits_row")
    return entropy_vs_temperature(row, _temperatures(temperatures)).numpy()


def animation_frames(logits_row: Tensor, temperatures: ArrayLike) -> np.ndarray:
    """One example's soft targets at each temperature, one row per frame; shape (M, K)."""
    row = _logits_row(logits_row, "logits_row")
    return torch.stack([soft_targets(row, temperature) for temperature in _temperatures(temperatures)]).numpy()


# ---------------------------------------------------------------------------------------------------------
# A whole split at a temperature
# ---------------------------------------------------------------------------------------------------------


def dataset_entropy(logits: Tensor, labels: Tensor, temperatures: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean soft-target entropy (nats) at each temperature: over all examples (M,) and per true class (K, M).

    Classes absent from `labels` get NaN rows (no data), which plot as gaps. Memory is M * N * K floats
    (61 x 10,000 x 10 is about 24 MB), and the result does not depend on the current T: cache it.
    """
    logits, labels = _logits_matrix(logits, labels)
    num_classes = logits.shape[1]
    per_example = entropy_vs_temperature(logits, _temperatures(temperatures))  # (M, N)
    sums = torch.zeros(num_classes, per_example.shape[0], dtype=per_example.dtype)
    sums.index_add_(0, labels, per_example.T)  # (K, M): row c adds up the examples labelled c
    counts = torch.bincount(labels, minlength=num_classes).to(per_example.dtype)  # (K,)
    return per_example.mean(dim=1).numpy(), (sums / counts.unsqueeze(1)).numpy()  # 0 / 0 = NaN by design


def dark_knowledge(logits: Tensor, labels: Tensor, temperature: float) -> np.ndarray:
    """Mean soft target per true class at `temperature`: (K, K), row = true class, NaN for absent classes."""
    logits, labels = _logits_matrix(logits, labels)
    return dark_knowledge_matrix(logits, labels, temperature).numpy()


def similar_pairs(matrix: ArrayLike, top: int = 5) -> list[tuple[int, int, float]]:
    """The `top` class pairs sharing the most mass in a `dark_knowledge` matrix: (i, j, mass) tuples."""
    return similar_class_pairs(torch.as_tensor(np.asarray(matrix, dtype=float)), top)


def smoothing_at_same_entropy(soft_targets_row: ArrayLike, label: int) -> np.ndarray:
    """Label smoothing of `label` with exactly the entropy of `soft_targets_row` (K,); shape (K,).

    Both targets are equally uncertain; only the soft targets say *which* wrong classes are plausible.
    """
    probs = torch.as_tensor(np.asarray(soft_targets_row, dtype=float))
    if probs.dim() != 1 or probs.numel() < 2:
        raise ValueError(f"soft_targets_row must be one probability vector (classes,), got {tuple(probs.shape)}")
    if (probs < 0).any() or abs(float(probs.sum()) - 1.0) > 1e-4:
        raise ValueError("soft_targets_row must be probabilities: non-negative and summing to 1")
    num_classes = probs.numel()
    smoothing = smoothing_for_entropy(float(entropy(probs)), num_classes)
    return label_smoothing_targets(torch.tensor([int(label)]), num_classes, smoothing)[0].numpy()


# ---------------------------------------------------------------------------------------------------------
# Loss anatomy: the soft term's gradient on one example
# ---------------------------------------------------------------------------------------------------------


def _logit_pair(student_logits_row: Tensor, teacher_logits_row: Tensor) -> tuple[Tensor, Tensor]:
    """Both rows as a batch of one, (1, K) each, in float64."""
    student = _logits_row(student_logits_row, "student_logits_row")
    teacher = _logits_row(teacher_logits_row, "teacher_logits_row")
    if student.shape != teacher.shape:
        raise ValueError(
            f"student_logits_row {tuple(student.shape)} and teacher_logits_row {tuple(teacher.shape)} "
            "must have the same number of classes"
        )
    return student.unsqueeze(0), teacher.unsqueeze(0)


def loss_anatomy(student_logits_row: Tensor, teacher_logits_row: Tensor, temperature: float) -> dict[str, Any]:
    """The soft term's gradient w.r.t. each student logit of one example, with and without the T² factor.

    Returns a dict with
      "gradient_scaled" (K,): gradient of T² * KL (what training uses);
      "gradient_unscaled" (K,): gradient of KL alone, which shrinks like 1/T²;
      "logit_matching" (K,): the high-T limit (centred s − centred t) / K;
      "soft_loss": T² * KL at this T.
    """
    student, teacher = _logit_pair(student_logits_row, teacher_logits_row)
    matching = logit_matching_gradient(student, teacher)  # (1, K)
    soft = kd_loss_parts(student, teacher, None, temperature, alpha=1.0).soft
    return {
        "gradient_scaled": soft_loss_gradient(student, teacher, temperature, scaled=True)[0].numpy(),
        "gradient_unscaled": soft_loss_gradient(student, teacher, temperature, scaled=False)[0].numpy(),
        "logit_matching": matching[0].numpy(),
        "soft_loss": float(soft),
    }


def logit_matching_distance(
    student_logits_row: Tensor, teacher_logits_row: Tensor, temperatures: ArrayLike
) -> np.ndarray:
    """Relative distance between the T²-scaled soft gradient and logit matching at each temperature; (M,).

    It falls roughly like 1/T: at high temperature, distillation is matching logits.
    """
    student, teacher = _logit_pair(student_logits_row, teacher_logits_row)
    # Softmax ignores a constant shift, so such a student already matches the teacher: nothing to compare.
    if torch.allclose(student - student.mean(), teacher - teacher.mean(), atol=1e-6):
        raise ValueError(
            "student_logits_row equals teacher_logits_row up to a constant shift, so there is no gradient "
            "to compare; use a different (e.g. untrained) student"
        )
    matching = logit_matching_gradient(student, teacher)  # (1, K)
    distances = [
        (soft_loss_gradient(student, teacher, temperature, scaled=True) - matching).norm() / matching.norm()
        for temperature in _temperatures(temperatures)
    ]
    return torch.stack(distances).numpy()


@functools.lru_cache(maxsize=4)
def untrained_student(info: DatasetInfo, spec: str = DEFAULT_STUDENT, seed: int = 0) -> nn.Module:
    """A freshly initialised student for `info`'s dataset, the same for the same (spec, seed), in eval mode.

    The weights are drawn from a private generator rather than by reseeding torch's global one, which
    training threads in the same process rely on. The distribution is PyTorch's default for Linear and
    Conv2d layers: weights and biases uniform in ±1/sqrt(fan_in). Cached: build once per process.
    """
    model = build_model(spec, info)
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, nn.Linear | nn.Conv2d):
                bound = layer.weight[0].numel() ** -0.5  # fan_in = inputs per output unit
                layer.weight.uniform_(-bound, bound, generator=generator)
                if layer.bias is not None:
                    layer.bias.uniform_(-bound, bound, generator=generator)
    return model.eval()


# ---------------------------------------------------------------------------------------------------------
# An example with everything that does not depend on T
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One example the explorer shows, with everything about it that does not depend on the temperature."""

    title: str  # e.g. "test example #12" or "your image sketch.png"
    image: Tensor  # (C, H, W) model input in [0, 1], kept so a trained student can be asked about it too
    pixels: np.ndarray  # uint8 display pixels, (H, W) or (H, W, 3)
    label: int | None  # the true class; None for an upload
    teacher_logits: Tensor  # (K,)
    student_logits: Tensor  # (K,), from `untrained_student`
    entropy_curve: np.ndarray  # (len(CURVE_TEMPERATURES),) nats
    animation_frames: np.ndarray  # (len(SLIDER_TEMPERATURES), K) soft targets
    logit_matching_distance: np.ndarray  # (len(CURVE_TEMPERATURES),)

    @property
    def target_class(self) -> int:
        """The label, or for an upload (which has none) the teacher's own answer."""
        return self.label if self.label is not None else int(self.teacher_logits.argmax())


def _make_example(
    title: str, image: Tensor, label: int | None, teacher_logits_row: Tensor, student: nn.Module
) -> Example:
    """Run the student once on `image` (C, H, W) and precompute the example's temperature curves."""
    teacher_row = _logits_row(teacher_logits_row, "teacher_logits_row")
    student_row = predict_logits(student, image.unsqueeze(0).float())[0].double()  # (K,)
    return Example(
        title=title,
        image=image,
        pixels=example_to_display(image),
        label=label,
        teacher_logits=teacher_row,
        student_logits=student_row,
        entropy_curve=entropy_curve(teacher_row, CURVE_TEMPERATURES),
        animation_frames=animation_frames(teacher_row, SLIDER_TEMPERATURES),
        logit_matching_distance=logit_matching_distance(student_row, teacher_row, CURVE_TEMPERATURES),
    )


def student_view(student: nn.Module, example: Example) -> tuple[Tensor, np.ndarray]:
    """Another student's logits (K,) for the example and their distance to logit matching over CURVE_TEMPERATURES."""
    student_row = predict_logits(student, example.image.unsqueeze(0).float())[0].double()  # (K,)
    return student_row, logit_matching_distance(student_row, example.teacher_logits, CURVE_TEMPERATURES)


def example_from_split(split: Split, teacher_logits: Tensor, index: int, student: nn.Module) -> Example:
    """Example number `index` of a split, with its cached teacher logits (N, K) for that split."""
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or not 0 <= index < len(split):
        raise ValueError(f"index must be an example number in [0, {len(split) - 1}], got {index!r}")
    if teacher_logits.shape[0] != len(split):
        raise ValueError(f"teacher_logits has {teacher_logits.shape[0]} rows but the split has {len(split)} examples")
    index = int(index)
    return _make_example(
        f"{split.name} example #{index}",
        split.images[index].cpu(),
        int(split.labels[index]),
        teacher_logits[index],
        student,
    )


def example_from_upload(data: bytes, filename: str, teacher: Teacher, student: nn.Module) -> Example:
    """An uploaded image as an example: one teacher forward; ValueError (from images.py) for a bad file."""
    image = image_to_example(data, teacher.info)  # (C, H, W) in [0, 1], shaped like the teacher's dataset
    device = next(teacher.model.parameters()).device
    teacher_row = predict_logits(teacher.model, image.unsqueeze(0).to(device))[0].cpu()  # (K,), eval, no grad
    return _make_example(f"your image {filename}", image, None, teacher_row, student)
