"""Oracle tests for distill_core.temperature: every formula is checked against an independent computation
(plain-Python sums, torch.nn.functional, or autograd), plus the limits SCIENCE.md promises."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from distill_core.temperature import (
    dark_knowledge_matrix,
    entropy,
    entropy_vs_temperature,
    kd_loss,
    kd_loss_parts,
    label_smoothing_targets,
    log_soft_targets,
    logit_matching_gradient,
    logit_matching_loss,
    normalized_entropy,
    similar_class_pairs,
    smoothing_for_entropy,
    soft_loss_gradient,
    soft_targets,
    temperature_grid,
    validate_alpha,
    validate_temperature,
)

# ---------------------------------------------------------------------------------------------------------
# Independent plain-Python references (no torch, no helpers from the module under test)
# ---------------------------------------------------------------------------------------------------------


def py_softmax(row, temperature):
    scaled = [z / temperature for z in row]
    top = max(scaled)
    exps = [math.exp(z - top) for z in scaled]
    total = sum(exps)
    return [e / total for e in exps]


def py_entropy(probs):
    return -sum(p * math.log(p) for p in probs if p > 0)


def py_kd_loss(student, teacher, labels, temperature, alpha):
    """alpha * T^2 * mean_b sum_k p_t log(p_t / p_s) + (1 - alpha) * mean_b -log softmax(s)[y]."""
    batch = len(student)
    kl = 0.0
    ce = 0.0
    for s_row, t_row, y in zip(student, teacher, labels, strict=True):
        p_s = py_softmax(s_row, temperature)
        p_t = py_softmax(t_row, temperature)
        kl += sum(pt * (math.log(pt) - math.log(ps)) for pt, ps in zip(p_t, p_s, strict=True) if pt > 0)
        ce += -math.log(py_softmax(s_row, 1.0)[y])
    return alpha * temperature**2 * kl / batch + (1 - alpha) * ce / batch


def random_pair(batch=6, classes=7, seed=0, scale=3.0):
    gen = torch.Generator().manual_seed(seed)
    student = torch.randn(batch, classes, generator=gen, dtype=torch.float64) * scale
    teacher = torch.randn(batch, classes, generator=gen, dtype=torch.float64) * scale
    labels = torch.randint(0, classes, (batch,), generator=gen)
    return student, teacher, labels


# ---------------------------------------------------------------------------------------------------------
# Soft targets
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [0.01, 1.0, 1000.0])
def test_soft_targets_are_finite_distributions_for_huge_logits(dtype, temperature):
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(1), dtype=dtype) * 1e4
    logits[0] = torch.tensor([1e4, -1e4] + [0.0] * 8, dtype=dtype)
    probs = soft_targets(logits, temperature)
    assert probs.dtype == dtype
    assert torch.isfinite(probs).all()
    assert (probs >= 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(8, dtype=dtype))
    assert torch.isfinite(entropy(probs)).all()


def test_soft_targets_match_python_softmax():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0], [0.0, 0.0, 0.0, 10.0]], dtype=torch.float64)
    for temperature in (0.5, 1.0, 4.0, 20.0):
        expected = torch.tensor([py_softmax(row, temperature) for row in logits.tolist()], dtype=torch.float64)
        torch.testing.assert_close(soft_targets(logits, temperature), expected)


def test_low_temperature_gives_one_hot_argmax():
    logits = torch.tensor([[0.3, 2.0, -1.0, 1.9], [5.0, 4.0, -3.0, 0.0]])
    probs = soft_targets(logits, 1e-3)
    torch.testing.assert_close(probs, F.one_hot(logits.argmax(-1), 4).float())


def test_high_temperature_gives_uniform():
    logits = torch.tensor([[30.0, -20.0, 5.0, 0.0, 12.0]])
    probs = soft_targets(logits, 1e6)
    torch.testing.assert_close(probs, torch.full((1, 5), 0.2), atol=1e-5, rtol=0)


def test_soft_targets_work_on_any_leading_shape():
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(2))
    probs = soft_targets(logits, 2.0)
    assert probs.shape == (2, 3, 5)
    torch.testing.assert_close(probs[1, 2], soft_targets(logits[1, 2], 2.0))


def test_log_soft_targets_stay_finite_where_soft_targets_underflow():
    logits = torch.tensor([[1e4, -1e4, 0.0]])
    log_probs = log_soft_targets(logits, 0.01)
    assert torch.isfinite(log_probs).all()
    assert soft_targets(logits, 0.01)[0, 1] == 0  # underflowed, which is why the log version exists
    torch.testing.assert_close(log_soft_targets(logits, 5e3).exp(), soft_targets(logits, 5e3))


# ---------------------------------------------------------------------------------------------------------
# Entropy
# ---------------------------------------------------------------------------------------------------------


def test_entropy_matches_python_and_lies_in_bounds():
    logits = torch.randn(20, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 4
    probs = soft_targets(logits, 1.5)
    expected = torch.tensor([py_entropy(row) for row in probs.tolist()], dtype=torch.float64)
    torch.testing.assert_close(entropy(probs), expected)
    assert (entropy(probs) >= 0).all() and (entropy(probs) <= math.log(6)).all()
    normalized = normalized_entropy(probs)
    assert (normalized >= 0).all() and (normalized <= 1).all()
    torch.testing.assert_close(normalized, expected / math.log(6))


def test_entropy_of_exact_zeros_is_not_nan():
    probs = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.25] * 4])
    torch.testing.assert_close(entropy(probs), torch.tensor([0.0, math.log(2), math.log(4)]))
    torch.testing.assert_close(normalized_entropy(probs), torch.tensor([0.0, 0.5, 1.0]))


def test_normalized_entropy_rejects_a_single_class():
    with pytest.raises(ValueError, match="probs"):
        normalized_entropy(torch.ones(3, 1))


@settings(max_examples=60, deadline=None)
@given(
    row=st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=12),
    temps=st.lists(st.floats(0.01, 1000.0), min_size=2, max_size=20),
)
def test_entropy_never_decreases_as_temperature_rises(row, temps):
    logits = torch.tensor(row, dtype=torch.float64)
    curve = entropy_vs_temperature(logits, sorted(temps))  # (M,)
    assert (curve.diff() >= -1e-10).all()
    assert (curve >= -1e-12).all() and (curve <= math.log(len(row)) + 1e-12).all()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0, 10.0])
def test_entropy_derivative_is_variance_over_t_cubed(temperature):
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0, -2.5], dtype=torch.float64)
    step = 1e-5 * temperature
    ends = entropy_vs_temperature(logits, [temperature - step, temperature + step])
    finite_difference = (ends[1] - ends[0]) / (2 * step)
    probs = soft_targets(logits, temperature)
    mean = (probs * logits).sum()
    variance = (probs * (logits - mean) ** 2).sum()
    torch.testing.assert_close(finite_difference, variance / temperature**3, rtol=1e-6, atol=1e-10)


def test_entropy_vs_temperature_matches_a_loop_over_examples():
    logits = torch.randn(4, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    temps = torch.tensor([0.3, 1.0, 7.0], dtype=torch.float64)
    curves = entropy_vs_temperature(logits, temps)
    assert curves.shape == (3, 4)
    for m, temperature in enumerate(temps.tolist()):
        for n in range(4):
            assert curves[m, n].item() == pytest.approx(py_entropy(py_softmax(logits[n].tolist(), temperature)))


def test_entropy_vs_temperature_rejects_bad_temperatures():
    with pytest.raises(ValueError, match="temperatures"):
        entropy_vs_temperature(torch.zeros(3), [1.0, 0.0])
    with pytest.raises(ValueError, match="temperatures"):
        entropy_vs_temperature(torch.zeros(3), [])


def test_temperature_grid_is_log_spaced():
    grid = temperature_grid(0.1, 100.0, 31)
    assert grid.shape == (31,)
    assert grid[0].item() == pytest.approx(0.1) and grid[-1].item() == pytest.approx(100.0)
    ratios = grid[1:] / grid[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 10 ** (3 / 30)))
    with pytest.raises(ValueError, match="high"):
        temperature_grid(10.0, 1.0)
    with pytest.raises(ValueError, match="num"):
        temperature_grid(num=1)


# ---------------------------------------------------------------------------------------------------------
# The distillation loss
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.5, 8.0])
def test_kd_loss_matches_explicit_sums(alpha, temperature):
    student, teacher, labels = random_pair(seed=5)
    expected = py_kd_loss(student.tolist(), teacher.tolist(), labels.tolist(), temperature, alpha)
    assert kd_loss(student, teacher, labels, temperature, alpha).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("alpha", [0.25, 0.9])
@pytest.mark.parametrize("temperature", [2.0, 20.0])
def test_kd_loss_matches_torch_functional_with_batchmean(alpha, temperature):
    student, teacher, labels = random_pair(batch=5, classes=10, seed=6)
    log_student = F.log_softmax(student / temperature, dim=-1)
    teacher_probs = F.softmax(teacher / temperature, dim=-1)
    kl_batchmean = F.kl_div(log_student, teacher_probs, reduction="batchmean")
    expected = alpha * temperature**2 * kl_batchmean + (1 - alpha) * F.cross_entropy(student, labels)
    torch.testing.assert_close(kd_loss(student, teacher, labels, temperature, alpha), expected)
    # The known bug: reduction="mean" also divides by the 10 classes, shrinking the soft term tenfold.
    with pytest.warns(UserWarning, match="batchmean"):
        kl_mean = F.kl_div(log_student, teacher_probs, reduction="mean")
    soft = kd_loss_parts(student, teacher, labels, temperature, alpha).soft
    torch.testing.assert_close(soft, temperature**2 * kl_mean * 10)
    assert not torch.isclose(soft, temperature**2 * kl_mean)


def test_kd_loss_parts_add_up_and_share_kd_loss():
    student, teacher, labels = random_pair(seed=7)
    parts = kd_loss_parts(student, teacher, labels, 4.0, 0.7)
    torch.testing.assert_close(parts.total, 0.7 * parts.soft + 0.3 * parts.hard)
    torch.testing.assert_close(parts.hard, F.cross_entropy(student, labels))
    torch.testing.assert_close(parts.total, kd_loss(student, teacher, labels, 4.0, 0.7))
    assert parts.total.dim() == 0


def test_kd_loss_is_zero_when_student_matches_teacher_and_alpha_is_one():
    _, teacher, _ = random_pair(seed=8)
    assert kd_loss(teacher.clone(), teacher, None, 3.0, 1.0).abs().item() < 1e-12


def test_soft_targets_only_needs_no_labels_and_skips_the_hard_term():
    student, teacher, _ = random_pair(seed=9)
    parts = kd_loss_parts(student, teacher, None, 2.0, 1.0)
    assert parts.hard is None
    torch.testing.assert_close(parts.total, parts.soft)
    # Out-of-range labels would make cross_entropy raise, so this passes only if the hard term is skipped.
    bad_labels = torch.full((student.shape[0],), 99)
    torch.testing.assert_close(kd_loss(student, teacher, bad_labels, 2.0, 1.0), parts.soft)


def test_alpha_zero_skips_the_soft_term(monkeypatch):
    student, teacher, labels = random_pair(seed=10)

    def forbidden(*args, **kwargs):
        raise AssertionError("the soft term was computed although alpha == 0")

    monkeypatch.setattr(F, "kl_div", forbidden)
    torch.testing.assert_close(kd_loss(student, teacher, labels, 2.0, 0.0), F.cross_entropy(student, labels))


def test_kd_loss_accepts_int32_labels_and_stays_finite_for_huge_logits():
    student, teacher, labels = random_pair(seed=11, scale=1e4)
    student, teacher = student.float(), teacher.float()
    for temperature in (0.01, 1.0, 1000.0):
        loss = kd_loss(student, teacher, labels.int(), temperature, 0.5)
        assert torch.isfinite(loss)


# ---------------------------------------------------------------------------------------------------------
# Gradients and the high-temperature limit
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
def test_soft_loss_gradient_matches_autograd(temperature):
    student, teacher, _ = random_pair(seed=12)
    student.requires_grad_(True)
    soft = kd_loss_parts(student, teacher, None, temperature, 1.0).soft  # T^2 * KL
    (scaled_grad,) = torch.autograd.grad(soft, student)
    torch.testing.assert_close(soft_loss_gradient(student.detach(), teacher, temperature), scaled_grad)
    unscaled = soft_loss_gradient(student.detach(), teacher, temperature, scaled=False)
    torch.testing.assert_close(unscaled, scaled_grad / temperature**2)


def test_single_example_gradient_uses_batch_of_one():
    student, teacher, _ = random_pair(batch=1, seed=13)
    expected = (soft_targets(student, 2.0) - soft_targets(teacher, 2.0)) / 2.0
    torch.testing.assert_close(soft_loss_gradient(student, teacher, 2.0, scaled=False), expected)


def test_logit_matching_gradient_matches_autograd():
    student, teacher, _ = random_pair(seed=14)
    student = (student + 5.0).requires_grad_(True)  # not zero-mean: centring must still hold
    (grad,) = torch.autograd.grad(logit_matching_loss(student, teacher), student)
    torch.testing.assert_close(logit_matching_gradient(student.detach(), teacher), grad)


def test_high_temperature_distillation_becomes_logit_matching():
    student, teacher, _ = random_pair(batch=4, classes=10, seed=15)
    student = student - student.mean(-1, keepdim=True)
    teacher = teacher - teacher.mean(-1, keepdim=True)
    limit = logit_matching_gradient(student, teacher)
    errors = [
        (soft_loss_gradient(student, teacher, temperature) - limit).abs().max().item()
        for temperature in (10.0, 100.0, 1000.0)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-2 * limit.abs().max().item()
    # And the limit is a real gradient: far from what a low temperature gives.
    low = (soft_loss_gradient(student, teacher, 1.0) - limit).abs().max().item()
    assert low > 10 * errors[2]


# ---------------------------------------------------------------------------------------------------------
# Label smoothing at a chosen entropy
# ---------------------------------------------------------------------------------------------------------


def test_label_smoothing_targets_match_formula():
    labels = torch.tensor([0, 3, 1])
    targets = label_smoothing_targets(labels, 4, 0.2)
    expected = torch.full((3, 4), 0.05)
    expected[0, 0] = expected[1, 3] = expected[2, 1] = 0.85
    torch.testing.assert_close(targets, expected)
    torch.testing.assert_close(targets.sum(-1), torch.ones(3))


@pytest.mark.parametrize("num_classes", [2, 10, 100])
@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 0.77, 1.0])
def test_smoothing_for_entropy_round_trips(num_classes, fraction):
    target = fraction * math.log(num_classes)
    smoothing = smoothing_for_entropy(target, num_classes)
    assert 0.0 <= smoothing <= 1.0
    row = label_smoothing_targets(torch.tensor([0]), num_classes, smoothing).double()
    assert entropy(row).item() == pytest.approx(target, abs=1e-6)


def test_smoothing_for_entropy_endpoints_and_errors():
    assert smoothing_for_entropy(0.0, 10) == pytest.approx(0.0, abs=1e-12)
    assert smoothing_for_entropy(math.log(10), 10) == pytest.approx(1.0, abs=1e-9)
    assert smoothing_for_entropy(math.log(10) * (1 + 1e-8), 10) == pytest.approx(1.0, abs=1e-9)
    with pytest.raises(ValueError, match="target_entropy"):
        smoothing_for_entropy(math.log(10) + 0.1, 10)
    with pytest.raises(ValueError, match="target_entropy"):
        smoothing_for_entropy(-0.1, 10)
    with pytest.raises(ValueError, match="num_classes"):
        smoothing_for_entropy(0.5, 1)


# ---------------------------------------------------------------------------------------------------------
# Dark knowledge
# ---------------------------------------------------------------------------------------------------------


def test_dark_knowledge_matrix_averages_soft_targets_per_true_class():
    logits = torch.randn(30, 4, generator=torch.Generator().manual_seed(16), dtype=torch.float64)
    labels = torch.tensor([0, 1, 3] * 10)  # class 2 never appears
    matrix = dark_knowledge_matrix(logits, labels, 3.0)
    assert matrix.shape == (4, 4)
    for cls in (0, 1, 3):
        rows = [py_softmax(logits[i].tolist(), 3.0) for i in range(30) if labels[i] == cls]
        expected = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
        torch.testing.assert_close(matrix[cls], torch.tensor(expected, dtype=torch.float64))
        assert matrix[cls].sum().item() == pytest.approx(1.0)
    assert torch.isnan(matrix[2]).all()


def test_similar_class_pairs_orders_symmetric_mass():
    matrix = torch.tensor(
        [
            [0.70, 0.20, 0.05, 0.05],
            [0.10, 0.80, 0.02, 0.08],
            [0.01, 0.01, 0.60, 0.38],
            [0.02, 0.30, 0.30, 0.38],
        ]
    )
    pairs = similar_class_pairs(matrix, top=3)
    assert [(i, j) for i, j, _ in pairs] == [(2, 3), (1, 3), (0, 1)]
    assert [mass for _, _, mass in pairs] == pytest.approx([0.34, 0.19, 0.15])
    assert len(similar_class_pairs(matrix, top=100)) == 6  # each unordered pair once


def test_similar_class_pairs_skips_absent_classes():
    matrix = torch.tensor([[0.9, 0.1, 0.0], [float("nan")] * 3, [0.3, 0.2, 0.5]])
    assert [(i, j) for i, j, _ in similar_class_pairs(matrix)] == [(0, 2)]


# ---------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "2", None, True])
def test_bad_temperature_is_rejected_by_name(bad):
    with pytest.raises(ValueError, match="temperature"):
        validate_temperature(bad)
    with pytest.raises(ValueError, match="my_temp"):
        validate_temperature(bad, name="my_temp")
    with pytest.raises(ValueError, match="temperature"):
        soft_targets(torch.zeros(2, 3), bad)
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), None, bad, 1.0)


@pytest.mark.parametrize("bad", [-0.1, 1.1, float("nan")])
def test_bad_alpha_is_rejected_by_name(bad):
    with pytest.raises(ValueError, match="alpha"):
        validate_alpha(bad)
    with pytest.raises(ValueError, match="alpha"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 2.0, bad)


def test_validators_return_floats():
    assert validate_temperature(4) == 4.0 and isinstance(validate_temperature(4), float)
    assert validate_alpha(1) == 1.0 and isinstance(validate_alpha(0), float)


def test_missing_labels_with_alpha_below_one_is_rejected():
    with pytest.raises(ValueError, match="labels"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), None, 2.0, 0.5)


def test_mismatched_shapes_are_rejected_by_name():
    with pytest.raises(ValueError, match="teacher_logits"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 4), None, 2.0, 1.0)
    with pytest.raises(ValueError, match="student_logits"):
        soft_loss_gradient(torch.zeros(3), torch.zeros(3), 2.0)
    with pytest.raises(ValueError, match="teacher_logits"):
        logit_matching_loss(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="labels"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, dtype=torch.long), 2.0, 0.5)
    with pytest.raises(ValueError, match="labels"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), 2.0, 0.5)
    with pytest.raises(ValueError, match="labels"):
        dark_knowledge_matrix(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long), 1.0)
    with pytest.raises(ValueError, match="labels"):
        dark_knowledge_matrix(torch.zeros(2, 3), torch.tensor([0, 3]), 1.0)


def test_bad_smoothing_arguments_are_rejected_by_name():
    labels = torch.tensor([0, 1])
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError, match="smoothing"):
            label_smoothing_targets(labels, 3, bad)
    with pytest.raises(ValueError, match="num_classes"):
        label_smoothing_targets(labels, 1, 0.1)
    with pytest.raises(ValueError, match="labels"):
        label_smoothing_targets(torch.tensor([0, 5]), 3, 0.1)
    with pytest.raises(ValueError, match="matrix"):
        similar_class_pairs(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="top"):
        similar_class_pairs(torch.zeros(3, 3), top=0)
