import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from distill_core.data import DatasetSplits, Split, get_info
from distill_core.training import (
    BIAS_GRID,
    TrainConfig,
    bias_corrected_metrics,
    confusion_matrix,
    per_class_accuracy,
    summarize_seeds,
    train_pair,
)

TINY = TrainConfig(student="mlp:16", epochs=2, batch_size=64, train_fraction=0.2, temperature=4, alpha=0.7)


def test_tiny_pair_run_end_to_end():
    events = []
    result = train_pair(TINY, on_event=events.append)
    assert result.status == "completed"
    assert [e["epoch"] for e in events] == [1.0, 2.0]
    for key in ("baseline_hard_loss", "distilled_hard_loss", "distilled_soft_loss", "distilled_val_accuracy"):
        assert all(math.isfinite(e[key]) for e in events), key
    assert events[-1]["step"] == events[-1]["steps_total"]
    for student in (result.baseline, result.distilled):
        assert 0.3 < student["test_accuracy"] <= 1.0  # 2 epochs on 700 digits already beat chance (0.1)
        assert len(student["per_class_accuracy"]) == 10
        assert sum(map(sum, student["confusion_matrix"])) == 1000
    # The last event's test accuracy is the reported one: last epoch, never the best.
    assert result.distilled["test_accuracy"] == events[-1]["distilled_test_accuracy"]
    assert result.timing["samples_per_second"] > 0
    assert "bias_corrected" not in result.distilled


def test_with_alpha_zero_the_pair_is_identical_init_batches_and_augmentation():
    # alpha = 0 makes both losses plain cross-entropy. Bitwise-equal histories then prove that both students
    # started from the same weights and saw the same batches in the same order with the same jitter.
    config = dataclasses.replace(TINY, alpha=0.0, shift_pixels=1)
    result = train_pair(config)
    for event in result.history:
        assert event["baseline_hard_loss"] == event["distilled_hard_loss"]
        assert event["baseline_test_accuracy"] == event["distilled_test_accuracy"]
    assert result.baseline["confusion_matrix"] == result.distilled["confusion_matrix"]


def test_distillation_changes_the_result_when_alpha_is_positive():
    result = train_pair(dataclasses.replace(TINY, alpha=1.0))
    assert result.history[-1]["baseline_hard_loss"] != result.history[-1]["distilled_hard_loss"]


def test_same_seed_reproduces_and_another_seed_differs():
    first, again = train_pair(TINY), train_pair(TINY)
    other = train_pair(dataclasses.replace(TINY, seed=1))
    assert first.history[-1]["distilled_total_loss"] == again.history[-1]["distilled_total_loss"]
    assert first.history[-1]["distilled_total_loss"] != other.history[-1]["distilled_total_loss"]


def test_cancellation_is_checked_every_step():
    calls = []

    def stop_after_three_steps():
        calls.append(1)
        return len(calls) > 3

    result = train_pair(dataclasses.replace(TINY, epochs=5), should_stop=stop_after_three_steps)
    assert result.status == "cancelled"
    assert len(calls) == 4 and result.history == []


def test_a_diverging_run_ends_as_diverged_and_keeps_its_history():
    config = dataclasses.replace(TINY, student="mlp:256-256", lr=10.0, optimizer="sgd", epochs=3)
    result = train_pair(config)
    assert result.status == "diverged"
    assert result.history and not math.isfinite(result.history[-1]["baseline_hard_loss"])
    assert "learning rate" in result.error


def test_omitting_a_class_reports_bias_corrected_metrics():
    config = dataclasses.replace(TINY, omit_classes=(3,), train_fraction=0.3, epochs=3, alpha=1.0, temperature=8)
    result = train_pair(config)
    corrected = result.distilled["bias_corrected"]
    assert corrected["class_bias"][3] in BIAS_GRID.tolist()
    assert [b for i, b in enumerate(corrected["class_bias"]) if i != 3] == [0.0] * 9
    assert result.baseline["per_class_accuracy"][3] == 0.0  # never saw a 3, never predicts one


def _tagged_split(name, labels, three_penalty):
    # Pixel (0, 0) stores the label and pixel (0, 1) how far the model pushes class 3 down for that example.
    images = torch.zeros(len(labels), 1, 28, 28)
    images[:, 0, 0, 0] = labels.float()
    images[:, 0, 0, 1] = three_penalty
    return Split(name, images, labels, torch.arange(len(labels)))


class _TaggedModel(torch.nn.Module):
    """Right about every example, except that class 3's logit is lowered by the penalty written in the image."""

    def forward(self, images):
        labels = images[:, 0, 0, 0].long()
        logits = torch.nn.functional.one_hot(labels, 10).float() * 2.0
        logits[:, 3] -= images[:, 0, 0, 1]
        return logits


def test_bias_shift_is_chosen_on_validation_only():
    labels = torch.arange(10).repeat(10)  # (100,) ten of each class
    splits = DatasetSplits(
        get_info("mnist5k"),
        train=_tagged_split("train", labels, 0.0),
        val=_tagged_split("val", labels, 5.0),  # 3s need a shift above 3 here...
        test=_tagged_split("test", labels, 14.0),  # ...and above 12 here, which validation cannot know
    )
    corrected = bias_corrected_metrics(_TaggedModel(), splits, (3,))
    # Independent oracle: the grid shift with the lowest validation cross-entropy, computed one shift at a time.
    val_logits = _TaggedModel()(splits.val.images)
    nll = [F.cross_entropy(val_logits + torch.eye(10)[3] * shift, labels).item() for shift in BIAS_GRID.tolist()]
    expected = BIAS_GRID[min(range(len(nll)), key=nll.__getitem__)].item()
    assert corrected["class_bias"][3] == pytest.approx(expected)
    assert 3 < expected < 7 and corrected["val_accuracy"] == 1.0
    assert corrected["per_class_accuracy"][3] == 0.0  # the test split's 3s stay wrong: no peeking at test
    assert corrected["test_accuracy"] == pytest.approx(0.9)


def test_confusion_and_per_class_accuracy_agree_with_a_hand_count():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 2, 0, 2])
    confusion = confusion_matrix(labels, predictions, 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert per_class_accuracy(confusion) == pytest.approx([0.5, 1.0, 2 / 3])


def test_seed_summary_gives_mean_and_sample_std_of_the_gain():
    summary = summarize_seeds([0, 1, 2], [0.90, 0.92, 0.94], [0.93, 0.93, 0.96])
    assert summary["gain"]["mean"] == pytest.approx((0.03 + 0.01 + 0.02) / 3)
    assert summary["gain"]["std"] == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("temperature", 0.0, "temperature"),
        ("temperature", float("nan"), "temperature"),
        ("temperature", float("inf"), "temperature"),
        ("alpha", 1.5, "alpha"),
        ("alpha", -0.1, "alpha"),
        ("epochs", 0, "epochs"),
        ("epochs", 10_000, "epochs"),
        ("lr", 0.0, "lr"),
        ("lr", -1e-3, "lr"),
        ("batch_size", 0, "batch_size"),
        ("student", "mlp:abc", "spec"),
        ("dataset", "imagenet", "unknown dataset"),
        ("omit_classes", (11,), "omit_classes"),
        ("omit_classes", tuple(range(10)), "omit"),
        ("only_classes", (-1,), "only_classes"),
        ("train_fraction", 0.0, "train_fraction"),
        ("optimizer", "lion", "optimizer"),
    ],
)
def test_bad_config_values_are_refused_naming_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(TINY, **{field: value})


def test_batch_larger_than_the_transfer_set_is_refused():
    with pytest.raises(ValueError, match="batch_size 5000 is larger than the transfer set"):
        train_pair(dataclasses.replace(TINY, batch_size=5000))


def test_config_round_trips_through_a_dict_and_rejects_unknown_fields():
    config = dataclasses.replace(TINY, omit_classes=(5, 3))
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.omit_classes == (3, 5)
    with pytest.raises(ValueError, match="unknown config field"):
        TrainConfig.from_dict({**config.to_dict(), "temprature": 3})
