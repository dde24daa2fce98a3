"""Oracle tests for distill_core.explore: every number is checked against plain numpy (or autograd), written
here independently of distill_core.temperature, and the delegating helpers against temperature.* itself."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from distill_core import explore, temperature
from distill_core.data import DATASETS, Split
from distill_core.images import image_to_example
from distill_core.models import build_model
from distill_core.teachers import Teacher

INFO = DATASETS["mnist5k"]
TINY_STUDENT = "mlp:16"


# ---------------------------------------------------------------------------------------------------------
# Independent references
# ---------------------------------------------------------------------------------------------------------


def np_softmax(logits, temp):
    scaled = np.asarray(logits, dtype=np.float64) / temp
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    exps = np.exp(scaled)
    return exps / exps.sum(axis=-1, keepdims=True)


def np_entropy(probs):
    probs = np.asarray(probs, dtype=np.float64)
    logs = np.log(np.where(probs > 0, probs, 1.0))
    return -(probs * logs).sum(axis=-1)


@pytest.fixture
def logits():
    # (200, 10): a confident teacher, with a few examples made deliberately ambiguous.
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(200, 10, generator=generator) * 3
    values[[5, 17, 42], :] *= 0.05
    return values


@pytest.fixture
def labels():
    return torch.arange(200) % 10


@pytest.fixture
def row():
    return torch.tensor([4.0, 1.5, -2.0, 0.3, 3.1, -5.0, 0.0, 2.2, -1.0, 0.7])


# ---------------------------------------------------------------------------------------------------------
# Temperature grids
# ---------------------------------------------------------------------------------------------------------


def test_slider_temperatures_are_round_increasing_and_cover_the_range():
    temps = explore.SLIDER_TEMPERATURES
    assert temps[0] == 0.1 and temps[-1] == 100.0
    assert all(a < b for a, b in zip(temps, temps[1:], strict=False))
    assert {1.0, 4.0, 8.0, 20.0} <= set(temps)
    # Roughly even on a log scale: no step multiplies T by more than 1.5.
    assert max(b / a for a, b in zip(temps, temps[1:], strict=False)) <= 1.5 + 1e-9


def test_curve_temperatures_are_log_spaced():
    logs = np.log10(explore.CURVE_TEMPERATURES)
    assert len(logs) == 61
    np.testing.assert_allclose(logs, np.linspace(-1, 2, 61), atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Picking examples
# ---------------------------------------------------------------------------------------------------------


def test_most_ambiguous_matches_a_numpy_entropy_ranking(logits):
    entropies = np_entropy(np_softmax(logits.numpy(), 1.0))
    expected = np.argsort(-entropies)[:10].tolist()
    assert explore.most_ambiguous(logits, top=10) == expected
    assert set(explore.most_ambiguous(logits, top=3)) == {5, 17, 42}


def test_most_ambiguous_caps_top_at_the_number_of_examples(logits):
    assert sorted(explore.most_ambiguous(logits[:4], top=10)) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="top"):
        explore.most_ambiguous(logits, top=0)
    with pytest.raises(ValueError, match="logits"):
        explore.most_ambiguous(logits[0])


def test_examples_of_class(labels):
    assert explore.examples_of_class(labels, 3) == [i for i in range(200) if i % 10 == 3]
    assert explore.examples_of_class(labels, 12) == []


def test_random_example_is_reproducible_and_in_range():
    picks = [explore.random_example(50, seed) for seed in range(40)]
    assert picks == [explore.random_example(50, seed) for seed in range(40)]
    assert all(0 <= pick < 50 for pick in picks)
    assert len(set(picks)) > 10  # different seeds really pick different examples
    with pytest.raises(ValueError, match="num_examples"):
        explore.random_example(0, seed=1)


# ---------------------------------------------------------------------------------------------------------
# One example
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("temp", [0.3, 1.0, 8.0, 50.0])
def test_example_at_temperature_matches_numpy(row, temp):
    result = explore.example_at_temperature(row, temp, hesitations=3)
    expected = np_softmax(row.numpy(), temp)
    np.testing.assert_allclose(result["soft_targets"], expected, atol=1e-12)
    np.testing.assert_allclose(result["soft_targets_at_1"], np_softmax(row.numpy(), 1.0), atol=1e-12)
    assert result["entropy"] == pytest.approx(np_entropy(expected), abs=1e-9)
    assert result["entropy_fraction"] == pytest.approx(np_entropy(expected) / math.log(10), abs=1e-9)
    assert result["predicted"] == 0
    # Runners-up: the next largest logits 4.0 > [3.1 (class 4), 2.2 (class 7), 1.5 (class 1)].
    assert [k for k, _ in result["hesitations"]] == [4, 7, 1]
    assert [p for _, p in result["hesitations"]] == pytest.approx(expected[[4, 7, 1]].tolist(), abs=1e-12)


def test_example_at_temperature_rejects_a_batch_and_a_bad_temperature(row):
    with pytest.raises(ValueError, match="logits_row"):
        explore.example_at_temperature(row.unsqueeze(0), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        explore.example_at_temperature(row, 0.0)
    with pytest.raises(ValueError, match="finite"):
        explore.example_at_temperature(torch.tensor([1.0, float("nan")]), 1.0)


def test_entropy_curve_matches_numpy_and_never_falls(row):
    temps = explore.CURVE_TEMPERATURES
    curve = explore.entropy_curve(row, temps)
    expected = [np_entropy(np_softmax(row.numpy(), temp)) for temp in temps]
    np.testing.assert_allclose(curve, expected, atol=1e-9)
    assert np.all(np.diff(curve) >= -1e-12)


def test_animation_frames_are_softmax_at_each_temperature(row):
    frames = explore.animation_frames(row, explore.SLIDER_TEMPERATURES)
    assert frames.shape == (len(explore.SLIDER_TEMPERATURES), 10)
    for frame, temp in zip(frames, explore.SLIDER_TEMPERATURES, strict=True):
        np.testing.assert_allclose(frame, np_softmax(row.numpy(), temp), atol=1e-12)
    with pytest.raises(ValueError, match="temperatures"):
        explore.animation_frames(row, [])


# ---------------------------------------------------------------------------------------------------------
# A whole split
# ---------------------------------------------------------------------------------------------------------


def test_dataset_entropy_matches_numpy_per_class_means(logits, labels):
    temps = [0.5, 1.0, 4.0, 20.0]
    overall, per_class = explore.dataset_entropy(logits, labels, temps)
    assert overall.shape == (4,) and per_class.shape == (10, 4)
    for m, temp in enumerate(temps):
        entropies = np_entropy(np_softmax(logits.numpy(), temp))  # (N,)
        assert overall[m] == pytest.approx(entropies.mean(), rel=1e-5)
        for k in range(10):
            assert per_class[k, m] == pytest.approx(entropies[labels.numpy() == k].mean(), rel=1e-5)


def test_dataset_entropy_leaves_absent_classes_as_nan(logits, labels):
    keep = labels != 3
    _, per_class = explore.dataset_entropy(logits[keep], labels[keep], [1.0, 2.0])
    assert np.isnan(per_class[3]).all()
    assert not np.isnan(np.delete(per_class, 3, axis=0)).any()
    with pytest.raises(ValueError, match="labels"):
        explore.dataset_entropy(logits, labels[:-1], [1.0])


def test_dark_knowledge_is_the_mean_soft_target_per_class(logits, labels):
    matrix = explore.dark_knowledge(logits, labels, 4.0)
    probs = np_softmax(logits.numpy(), 4.0)
    expected = np.stack([probs[labels.numpy() == k].mean(axis=0) for k in range(10)])
    np.testing.assert_allclose(matrix, expected, atol=1e-6)
    np.testing.assert_array_equal(matrix, temperature.dark_knowledge_matrix(logits, labels, 4.0).numpy())


def test_similar_pairs_matches_a_brute_force_search():
    rng = np.random.default_rng(3)
    matrix = rng.dirichlet(np.ones(6), size=6)  # (6, 6), rows sum to 1
    shared = {(i, j): (matrix[i, j] + matrix[j, i]) / 2 for i in range(6) for j in range(i + 1, 6)}
    best = sorted(shared, key=shared.get, reverse=True)[:4]
    pairs = explore.similar_pairs(matrix, top=4)
    assert [(i, j) for i, j, _ in pairs] == best
    assert [mass for _, _, mass in pairs] == pytest.approx([shared[pair] for pair in best])


def test_smoothing_at_same_entropy_has_that_entropy_and_equal_wrong_classes(row):
    soft = np_softmax(row.numpy(), 4.0)
    smoothed = explore.smoothing_at_same_entropy(soft, label=0)
    assert np_entropy(smoothed) == pytest.approx(np_entropy(soft), abs=1e-5)
    assert smoothed.argmax() == 0 and smoothed.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(smoothed[1:], smoothed[1], rtol=1e-6)  # label smoothing cannot prefer a class


def test_smoothing_at_same_entropy_rejects_non_probabilities():
    with pytest.raises(ValueError, match="soft_targets_row"):
        explore.smoothing_at_same_entropy([0.5, 0.7], label=0)
    with pytest.raises(ValueError, match="labels"):
        explore.smoothing_at_same_entropy([0.5, 0.5], label=2)


# ---------------------------------------------------------------------------------------------------------
# Loss anatomy
# ---------------------------------------------------------------------------------------------------------


def autograd_soft_gradient(student_row, teacher_row, temp):
    """d/ds of T^2 * sum p_t (log p_t - log p_s), written out by hand and differentiated by autograd."""
    student = student_row.double().clone().requires_grad_(True)
    log_student = torch.log_softmax(student / temp, dim=0)
    log_teacher = torch.log_softmax(teacher_row.double() / temp, dim=0)
    loss = temp**2 * (log_teacher.exp() * (log_teacher - log_student)).sum()
    loss.backward()
    return loss.item(), student.grad.numpy()


@pytest.mark.parametrize("temp", [1.0, 4.0, 20.0])
def test_loss_anatomy_matches_autograd(row, temp):
    student = torch.linspace(-1, 1, 10)
    parts = explore.loss_anatomy(student, row, temp)
    loss, gradient = autograd_soft_gradient(student, row, temp)
    np.testing.assert_allclose(parts["gradient_scaled"], gradient, atol=1e-10)
    np.testing.assert_allclose(parts["gradient_unscaled"], gradient / temp**2, atol=1e-10)
    centred = (student - student.mean()) - (row - row.mean())
    np.testing.assert_allclose(parts["logit_matching"], centred.numpy() / 10, atol=1e-6)
    assert parts["soft_loss"] == pytest.approx(loss, rel=1e-9)


def test_logit_matching_distance_is_the_relative_gap_and_vanishes_at_high_t(row):
    student = torch.linspace(-1, 1, 10)
    temps = [1.0, 10.0, 100.0, 1000.0]
    distances = explore.logit_matching_distance(student, row, temps)
    student64, row64 = student.double(), row.double()
    matching = ((student64 - student64.mean()) - (row64 - row64.mean())).numpy() / 10
    for distance, temp in zip(distances, temps, strict=True):
        _, gradient = autograd_soft_gradient(student, row, temp)
        expected = np.linalg.norm(gradient - matching) / np.linalg.norm(matching)
        assert distance == pytest.approx(expected, rel=1e-6)
    assert np.all(np.diff(distances) < 0) and distances[-1] < 1e-2


def test_logit_matching_distance_refuses_a_student_equal_to_the_teacher(row):
    with pytest.raises(ValueError, match="student_logits_row"):
        explore.logit_matching_distance(row + 3.0, row, [1.0])
    with pytest.raises(ValueError, match="same number of classes"):
        explore.loss_anatomy(row[:5], row, 1.0)


def test_untrained_student_is_seeded_privately():
    explore.untrained_student.cache_clear()
    torch.manual_seed(1)
    first = explore.untrained_student(INFO, TINY_STUDENT, seed=7)
    explore.untrained_student.cache_clear()
    torch.manual_seed(2)  # a different global RNG state must not change the weights
    second = explore.untrained_student(INFO, TINY_STUDENT, seed=7)
    other = explore.untrained_student(INFO, TINY_STUDENT, seed=8)
    explore.untrained_student.cache_clear()
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(next(first.parameters()), next(other.parameters()))
    first_layer = first[2]  # Normalize, Flatten, then the first Linear (784 -> 16)
    assert first_layer.weight.abs().max() <= 784**-0.5
    assert not first.training


# ---------------------------------------------------------------------------------------------------------
# Examples with everything that does not depend on T
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def split():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(6, 1, 28, 28, generator=generator)
    return Split("test", images, torch.tensor([3, 1, 4, 1, 5, 9]), torch.arange(6))


@pytest.fixture
def student():
    explore.untrained_student.cache_clear()
    yield explore.untrained_student(INFO, TINY_STUDENT)
    explore.untrained_student.cache_clear()


def test_example_from_split_precomputes_its_curves(split, student, logits):
    teacher_logits = logits[:6]
    example = explore.example_from_split(split, teacher_logits, 2, student)
    assert example.title == "test example #2" and example.label == 4 and example.target_class == 4
    assert example.pixels.shape == (28, 28) and example.pixels.dtype == np.uint8
    np.testing.assert_allclose(example.teacher_logits, teacher_logits[2].double())
    with torch.no_grad():
        expected_student = student(split.images[2:3])[0]
    np.testing.assert_allclose(example.student_logits, expected_student.double(), atol=1e-6)
    np.testing.assert_allclose(
        example.entropy_curve, explore.entropy_curve(teacher_logits[2], explore.CURVE_TEMPERATURES)
    )
    assert example.animation_frames.shape == (len(explore.SLIDER_TEMPERATURES), 10)
    assert example.logit_matching_distance.shape == (len(explore.CURVE_TEMPERATURES),)


def test_example_from_split_rejects_a_bad_index(split, student, logits):
    with pytest.raises(ValueError, match="index"):
        explore.example_from_split(split, logits[:6], 6, student)
    with pytest.raises(ValueError, match="rows"):
        explore.example_from_split(split, logits[:5], 0, student)


def png_of_a_stroke():
    image = Image.new("L", (64, 64), color=255)
    ImageDraw.Draw(image).line([(32, 8), (32, 56)], fill=0, width=6)  # a dark "1" on white paper
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_example_from_upload_runs_the_teacher_once_on_the_decoded_image(student):
    model = build_model(TINY_STUDENT, INFO).eval()
    teacher = Teacher("tiny", model, {}, INFO, "0" * 16)
    data = png_of_a_stroke()
    example = explore.example_from_upload(data, "one.png", teacher, student)
    with torch.no_grad():
        expected = model(image_to_example(data, INFO).unsqueeze(0))[0]
    np.testing.assert_allclose(example.teacher_logits, expected.double(), atol=1e-6)
    assert example.label is None and example.title == "your image one.png"
    assert example.target_class == int(expected.argmax())


def test_example_from_upload_passes_on_the_image_error(student):
    teacher = Teacher("tiny", build_model(TINY_STUDENT, INFO).eval(), {}, INFO, "0" * 16)
    with pytest.raises(ValueError) as expected:
        image_to_example(b"not an image", INFO)
    with pytest.raises(ValueError) as raised:
        explore.example_from_upload(b"not an image", "x.png", teacher, student)
    assert str(raised.value) == str(expected.value)
