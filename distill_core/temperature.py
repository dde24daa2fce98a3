"""The project's math contract: temperature-scaled soft targets and everything built on them.

Owns soft targets and their entropy, the distillation loss (Hinton et al. 2015) and its parts, its analytic
gradient and high-temperature limit (logit matching), label smoothing at a chosen entropy, and the
"dark knowledge" summaries the explorer plots. Conventions are those of SCIENCE.md: logits are
(batch, classes), entropies are in nats, and KL is averaged over the batch ("batchmean").
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

# Bisection halves the interval [0, 1] each step; 60 steps reach float64 resolution.
_BISECTION_STEPS = 60


# ---------------------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------------------


def _as_finite_real(value: object, name: str) -> float:
    """Turn a Python or NumPy real number into a float; bool, NaN, inf and non-numbers are rejected."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def validate_temperature(temperature: object, name: str = "temperature") -> float:
    """Return `temperature` as a float, or raise ValueError unless it is a finite number > 0."""
    value = _as_finite_real(temperature, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0 (for example 1.0 or 4.0), got {temperature!r}")
    return value


def validate_alpha(alpha: object) -> float:
    """Return `alpha` as a float, or raise ValueError unless it lies in [0, 1]."""
    value = _as_finite_real(alpha, "alpha")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (1 = soft targets only, 0 = labels only), got {alpha!r}")
    return value


def _check_logit_pair(student_logits: Tensor, teacher_logits: Tensor) -> None:
    """Both logit tensors must be (batch, classes) and of the same shape."""
    if student_logits.dim() != 2:
        raise ValueError(
            f"student_logits must be 2-D (batch, classes), got shape {tuple(student_logits.shape)}; "
            "use logits.unsqueeze(0) for a single example"
        )
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits shape {tuple(teacher_logits.shape)} must equal student_logits shape "
            f"{tuple(student_logits.shape)}"
        )


def _check_labels(labels: Tensor, batch: int | None, name: str = "labels") -> None:
    """Labels must be integer class indices, one per example: shape (batch,), any length if batch is None."""
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or (batch is not None and labels.shape[0] != batch):
        expected = "(batch,)" if batch is None else f"({batch},)"
        raise ValueError(f"{name} must have shape {expected}, one class index per example, got {tuple(labels.shape)}")


def _check_label_range(labels: Tensor, num_classes: int, name: str = "labels") -> None:
    """Class indices must lie in [0, num_classes). Synchronises with the device: never call it in a step."""
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes - 1}]")


def _check_num_classes(num_classes: object) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    return int(num_classes)


# ---------------------------------------------------------------------------------------------------------
# Soft targets and entropy
# ---------------------------------------------------------------------------------------------------------


def soft_targets(logits: Tensor, temperature: float) -> Tensor:
    """softmax(logits / temperature) over the last dimension; any leading shape, dtype and device.

    torch.softmax subtracts the row maximum before exponentiating, so it stays finite for huge logits
    and tiny temperatures (logits / T = 1e6 is fine in float32).
    """
    temperature = validate_temperature(temperature)
    return torch.softmax(logits / temperature, dim=-1)


def log_soft_targets(logits: Tensor, temperature: float) -> Tensor:
    """log softmax(logits / temperature) over the last dimension; finite where soft_targets underflow."""
    temperature = validate_temperature(temperature)
    return torch.log_softmax(logits / temperature, dim=-1)


def entropy(probs: Tensor) -> Tensor:
    """Shannon entropy in nats over the last dimension, with 0 log 0 = 0; shape is probs.shape[:-1]."""
    # xlogy(0, 0) is defined as 0, so exact zeros (one-hot rows, underflowed softmax) give no NaN.
    return -torch.xlogy(probs, probs).sum(dim=-1)


def normalized_entropy(probs: Tensor) -> Tensor:
    """Entropy as a fraction of its maximum log K, in [0, 1]; K = probs.shape[-1] must be >= 2."""
    num_classes = probs.shape[-1]
    if num_classes < 2:
        raise ValueError(f"probs must have at least 2 classes in its last dimension, got {num_classes}")
    return entropy(probs) / math.log(num_classes)


def temperature_grid(low: float = 0.1, high: float = 100.0, num: int = 61) -> Tensor:
    """`num` log-spaced temperatures from `low` to `high`, both included; shape (num,)."""
    low = validate_temperature(low, "low")
    high = validate_temperature(high, "high")
    if high <= low:
        raise ValueError(f"high must be greater than low, got low={low} and high={high}")
    if isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 2:
        raise ValueError(f"num must be an integer >= 2, got {num!r}")
    return torch.logspace(math.log10(low), math.log10(high), int(num))


def entropy_vs_temperature(logits: Tensor, temperatures: Tensor | Sequence[float]) -> Tensor:
    """Entropy of the soft targets of every example at every temperature, in one broadcast.

    logits (K,) gives shape (M,); logits (N, K) gives (M, N). Averaging over examples is the caller's
    choice. Memory is M * N * K elements.
    """
    temps = torch.as_tensor(temperatures, dtype=logits.dtype, device=logits.device)
    if temps.dim() != 1 or temps.numel() == 0:
        raise ValueError(f"temperatures must be a non-empty 1-D sequence, got shape {tuple(temps.shape)}")
    if not torch.all(torch.isfinite(temps) & (temps > 0)):
        raise ValueError("temperatures must all be finite and > 0")
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must be (classes,) or (examples, classes), got shape {tuple(logits.shape)}")
    # (M, 1) or (M, 1, 1) so that each temperature scales every example: (M, K) or (M, N, K).
    scales = temps.view(-1, *([1] * logits.dim()))
    return entropy(torch.softmax(logits / scales, dim=-1))


# ---------------------------------------------------------------------------------------------------------
# The distillation loss
# ---------------------------------------------------------------------------------------------------------


class KDLossParts(NamedTuple):
    """The terms of the distillation loss, each a scalar tensor.

    soft: T^2 * KL(teacher || student) at temperature T, batch-averaged; multiplied by T^2, not by alpha.
    hard: cross-entropy of the student against the labels, batch-averaged.
    total: alpha * soft + (1 - alpha) * hard; a term whose weight is zero is left out, not multiplied by 0.
    A term is None when it was not computed: `hard` when labels is None, and, in `kd_loss`, any term
    whose weight is zero.
    """

    soft: Tensor | None
    hard: Tensor | None
    total: Tensor


def _soft_term(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)), summed over classes and averaged over the batch."""
    # Both sides in log space (log_target=True): stable even where the teacher's probabilities underflow.
    kl = F.kl_div(
        torch.log_softmax(student_logits / temperature, dim=-1),
        torch.log_softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",  # "mean" would also divide by the number of classes: a known bug.
        log_target=True,
    )
    return temperature**2 * kl


def _kd_terms(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor | None,
    temperature: float,
    alpha: float,
    skip_unweighted: bool,
) -> KDLossParts:
    """The one implementation behind kd_loss and kd_loss_parts."""
    temperature = validate_temperature(temperature)
    alpha = validate_alpha(alpha)
    _check_logit_pair(student_logits, teacher_logits)
    if labels is None and alpha < 1:
        raise ValueError(f"labels are required when alpha < 1 (got alpha={alpha}); pass labels or set alpha=1")
    if labels is not None:
        _check_labels(labels, student_logits.shape[0])

    want_soft = alpha > 0 or not skip_unweighted
    want_hard = labels is not None and (alpha < 1 or not skip_unweighted)
    soft = _soft_term(student_logits, teacher_logits, temperature) if want_soft else None
    # cross_entropy accepts only int64 targets; .long() is free when they already are.
    hard = F.cross_entropy(student_logits, labels.long()) if want_hard else None

    # Leave zero-weight terms out entirely, so that an infinite unused term cannot turn the total into NaN.
    if alpha == 1:
        total = soft
    elif alpha == 0:
        total = hard
    else:
        total = alpha * soft + (1 - alpha) * hard
    return KDLossParts(soft=soft, hard=hard, total=total)


def kd_loss_parts(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor | None,
    temperature: float,
    alpha: float,
) -> KDLossParts:
    """The distillation loss and both of its terms, for logging and the "loss anatomy" view.

    student_logits, teacher_logits: (batch, classes); labels: (batch,) class indices, or None when
    alpha == 1. `soft` is always computed; `hard` whenever labels are given.
    """
    return _kd_terms(student_logits, teacher_logits, labels, temperature, alpha, skip_unweighted=False)


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    labels: Tensor | None,
    temperature: float,
    alpha: float,
) -> Tensor:
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, labels).

    Both terms are batch means (KL with reduction="batchmean"). labels may be None only when alpha == 1.
    A term whose weight is zero is not computed. Returns a scalar tensor.
    """
    return _kd_terms(student_logits, teacher_logits, labels, temperature, alpha, skip_unweighted=True).total


# ---------------------------------------------------------------------------------------------------------
# Gradients and the high-temperature limit
# ---------------------------------------------------------------------------------------------------------


def _center(logits: Tensor) -> Tensor:
    """Subtract each row's mean: softmax cannot see a per-row shift, so only centred logits matter."""
    return logits - logits.mean(dim=-1, keepdim=True)


def soft_loss_gradient(
    student_logits: Tensor, teacher_logits: Tensor, temperature: float, scaled: bool = True
) -> Tensor:
    """Analytic gradient of the batch-mean soft term w.r.t. the student logits; shape (batch, classes).

    Unscaled, d KL / d s = (q_s - q_t) / (T * batch), which shrinks like 1/T^2 once q_s - q_t ~ 1/T.
    Scaled (the default), it is the gradient of T^2 * KL, the term the loss actually uses.
    """
    temperature = validate_temperature(temperature)
    _check_logit_pair(student_logits, teacher_logits)
    batch = student_logits.shape[0]
    # (batch, classes)
    diff = soft_targets(student_logits, temperature) - soft_targets(teacher_logits, temperature)
    scale = temperature**2 if scaled else 1.0
    return scale * diff / (temperature * batch)


def logit_matching_loss(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """0.5 * mean over batch and classes of (center(student) - center(teacher))^2; a scalar tensor.

    This is the high-temperature limit of the scaled soft term (Caruana et al.; Hinton et al. 2015, 2.1).
    Expanding softmax(z / T) = (1 + center(z) / T) / K + O(1/T^2) gives
        T^2 * d KL_batchmean / d s = T * (q_s - q_t) / B  ->  (center(s) - center(t)) / (B * K),
    and the gradient of this loss is exactly (center(s) - center(t)) / (B * K): the 0.5 and the mean over
    B * K entries are chosen so the two match. Centring makes the limit hold for any logits; for zero-mean
    logits it is plain MSE.
    """
    _check_logit_pair(student_logits, teacher_logits)
    return 0.5 * (_center(student_logits) - _center(teacher_logits)).pow(2).mean()


def logit_matching_gradient(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """Gradient of logit_matching_loss w.r.t. the student logits: (center(s) - center(t)) / (B * K)."""
    _check_logit_pair(student_logits, teacher_logits)
    # Centring is a projection, so the chain rule through it leaves the already-centred difference unchanged.
    return (_center(student_logits) - _center(teacher_logits)) / student_logits.numel()


# ---------------------------------------------------------------------------------------------------------
# Label smoothing at a chosen entropy
# ---------------------------------------------------------------------------------------------------------


def _validate_smoothing(smoothing: object) -> float:
    value = _as_finite_real(smoothing, "smoothing")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"smoothing must lie in [0, 1], got {smoothing!r}")
    return value


def label_smoothing_targets(labels: Tensor, num_classes: int, smoothing: float) -> Tensor:
    """(1 - smoothing) * one_hot(labels) + smoothing / K; shape (batch, K), in the default float dtype."""
    num_classes = _check_num_classes(num_classes)
    smoothing = _validate_smoothing(smoothing)
    _check_labels(labels, batch=None)
    _check_label_range(labels, num_classes)
    one_hot = F.one_hot(labels.long(), num_classes).to(torch.get_default_dtype())  # (batch, K)
    return (1 - smoothing) * one_hot + smoothing / num_classes


def _smoothed_entropy(smoothing: float, num_classes: int) -> float:
    """Entropy in nats of one smoothed one-hot row, in plain Python floats."""
    wrong = smoothing / num_classes
    right = 1 - smoothing + wrong
    return -sum(p * math.log(p) for p in (right, *[wrong] * (num_classes - 1)) if p > 0)


def smoothing_for_entropy(target_entropy: float, num_classes: int) -> float:
    """The label-smoothing amount in [0, 1] whose smoothed one-hot target has `target_entropy` nats.

    Entropy rises monotonically from 0 (one-hot) to log K (uniform) as smoothing goes from 0 to 1, so
    bisection finds it. Values a rounding error outside [0, log K] are clamped; anything further raises.
    """
    num_classes = _check_num_classes(num_classes)
    target = _as_finite_real(target_entropy, "target_entropy")
    max_entropy = math.log(num_classes)
    tolerance = 1e-6 * max_entropy  # float32 entropies can overshoot log K by a few ulps
    if not -tolerance <= target <= max_entropy + tolerance:
        raise ValueError(f"target_entropy must lie in [0, log {num_classes} = {max_entropy:.6f}], got {target!r}")
    if target >= max_entropy:
        # Entropy is flat at the uniform end (its maximum), so bisection would stop ~1e-8 short of 1.
        return 1.0
    target = max(target, 0.0)
    low, high = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = (low + high) / 2
        if _smoothed_entropy(mid, num_classes) < target:
            low = mid
        else:
            high = mid
    return (low + high) / 2


# ---------------------------------------------------------------------------------------------------------
# Dark knowledge: which wrong classes the teacher thinks are close
# ---------------------------------------------------------------------------------------------------------


def dark_knowledge_matrix(logits: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """Mean soft target of the examples of each true class; shape (K, K), row = true class.

    Each present row sums to 1. Rows for classes absent from `labels` are NaN ("no data", which plots
    as a gap), not zero, which would read as "no mass anywhere".
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be 2-D (examples, classes), got shape {tuple(logits.shape)}")
    num_examples, num_classes = logits.shape
    _check_labels(labels, num_examples)
    _check_label_range(labels, num_classes)
    probs = soft_targets(logits, temperature)  # (N, K)
    labels = labels.long()
    sums = torch.zeros(num_classes, num_classes, dtype=probs.dtype, device=probs.device)
    sums.index_add_(0, labels, probs)  # (K, K): row c sums the soft targets of the examples labelled c
    counts = torch.bincount(labels, minlength=num_classes).to(probs.dtype)  # (K,)
    return sums / counts.unsqueeze(1)  # 0 / 0 = NaN for absent classes, by design


def similar_class_pairs(matrix: Tensor, top: int = 5) -> list[tuple[int, int, float]]:
    """The `top` class pairs (i < j) with the most shared mass (m[i, j] + m[j, i]) / 2, largest first.

    Each unordered pair appears once; pairs touching a NaN row are skipped; ties keep (i, j) order.
    """
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square (K, K), got shape {tuple(matrix.shape)}")
    if isinstance(top, bool) or not isinstance(top, numbers.Integral) or top < 1:
        raise ValueError(f"top must be an integer >= 1, got {top!r}")
    symmetric = (matrix + matrix.T) / 2  # (K, K)
    rows, cols = torch.triu_indices(*matrix.shape, offset=1, device=matrix.device)  # pairs with i < j
    mass = symmetric[rows, cols]
    keep = ~torch.isnan(mass)
    rows, cols, mass = rows[keep], cols[keep], mass[keep]
    order = torch.sort(mass, descending=True, stable=True).indices[:top]
    return [(int(rows[k]), int(cols[k]), float(mass[k])) for k in order.tolist()]
