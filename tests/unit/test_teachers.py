import dataclasses
import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from distill_core import teachers
from distill_core.data import get_info, load_dataset
from distill_core.models import build_model, predict_logits
from distill_core.teachers import (
    BUNDLED_DIR,
    import_teacher,
    list_teachers,
    load_teacher,
    read_checkpoint,
    save_checkpoint,
    teacher_logits,
)

BUNDLED = BUNDLED_DIR / "mnist5k-cnn.pt"
MNIST = get_info("mnist5k")


class _Payload:
    """Unpickling this would create a marker file: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_bundled_teacher_scores_at_least_97_percent_on_the_test_split():
    teacher = load_teacher("mnist5k-cnn")
    splits = load_dataset("mnist5k")
    logits = teacher_logits(teacher, splits, "test")
    accuracy = (logits.argmax(1) == splits.test.labels).float().mean().item()
    assert accuracy >= 0.97
    assert teacher.metadata["test_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert BUNDLED.stat().st_size < 5_000_000


def test_bundled_teacher_metadata_records_its_provenance():
    _, metadata = read_checkpoint(BUNDLED)
    for key in (
        "dataset",
        "split",
        "architecture",
        "val_accuracy",
        "test_accuracy",
        "seed",
        "command",
        "versions",
    ):
        assert key in metadata
    assert metadata["command"].startswith("python -m distill_core teacher train")


@pytest.mark.parametrize("wrap", [True, False], ids=["torch-save", "raw-pickle"])
def test_a_pickle_carrying_code_is_refused_and_the_code_never_runs(tmp_path, wrap):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"state_dict": {"w": torch.zeros(1)}, "evil": _Payload(str(marker))}
    if wrap:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ValueError, match="evil.pt"):
        read_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00" * 10, os.urandom(4096), BUNDLED.read_bytes()[:5000], b"PK\x03\x04garbage"],
    ids=["empty", "zeros", "random", "truncated", "fake-zip"],
)
def test_damaged_files_are_refused_with_a_reason(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad.pt") as caught:
        read_checkpoint(path)
    assert "\n" not in str(caught.value)


def test_oversized_checkpoint_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(teachers, "MAX_CHECKPOINT_BYTES", 1000)
    with pytest.raises(ValueError, match="over the"):
        read_checkpoint(BUNDLED)


def test_a_state_dict_of_another_architecture_is_refused(tmp_path):
    path = save_checkpoint(
        tmp_path / "mlp.pt", build_model("mlp:30", MNIST), {"architecture": "cnn", "dataset": "mnist5k"}
    )
    with pytest.raises(ValueError, match="does not fit architecture 'cnn'"):
        import_teacher(path, "mismatch")


def test_a_state_dict_with_another_number_of_classes_is_refused(tmp_path):
    five_classes = dataclasses.replace(MNIST, num_classes=5)
    path = tmp_path / "five.pt"
    torch.save(build_model("cnn", five_classes).state_dict(), path)
    with pytest.raises(ValueError, match="10 classes"):
        import_teacher(path, "five", architecture="cnn", dataset="mnist5k")


def test_a_bare_state_dict_needs_arch_and_dataset(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(build_model("mlp:30", MNIST).state_dict(), path)
    with pytest.raises(ValueError, match="--arch"):
        import_teacher(path, "bare")
    info = import_teacher(path, "bare", architecture="mlp:30", dataset="mnist5k")
    assert info.origin == "imported" and info.path.name == "bare.pt"
    assert "bare" in {teacher.name for teacher in list_teachers(dataset="mnist5k")}


def test_safetensors_checkpoints_import_and_predict_like_the_original(tmp_path):
    torch.manual_seed(1)
    model = build_model("mlp:30", MNIST).eval()
    path = tmp_path / "model.safetensors"
    meta = {"distill_explorer": json.dumps({"architecture": "mlp:30", "dataset": "mnist5k"})}
    save_file(model.state_dict(), str(path), metadata=meta)
    import_teacher(path, "safe-one")
    loaded = load_teacher("safe-one")
    images = torch.rand(4, 1, 28, 28)
    assert torch.allclose(predict_logits(loaded.model, images), predict_logits(model, images))


@pytest.mark.parametrize("name", ["../escape", "UPPER", "", "a" * 65, "has space", ".hidden"])
def test_unsafe_teacher_names_are_refused(name):
    with pytest.raises(ValueError, match="teacher name"):
        import_teacher(BUNDLED, name)


def test_imported_copy_is_canonical_not_the_users_bytes(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(build_model("mlp:30", MNIST).state_dict(), path)
    info = import_teacher(path, "canon", architecture="mlp:30", dataset="mnist5k")
    payload = torch.load(info.path, weights_only=True)
    assert payload["format"] == teachers.FORMAT and payload["metadata"]["origin"] == "imported"


def test_logits_cache_is_reused_and_a_corrupt_cache_is_recomputed(distill_home):
    teacher = load_teacher("mnist5k-cnn")
    splits = load_dataset("mnist5k")
    first = teacher_logits(teacher, splits, "val")
    (cache,) = (distill_home / "cache").glob("logits-*-mnist5k-val.pt")
    assert first.shape == (500, 10)

    cache.write_bytes(b"corrupted")
    assert torch.equal(teacher_logits(teacher, splits, "val"), first)

    tampered = torch.load(cache, weights_only=True)
    tampered["logits"] = tampered["logits"] + 1.0  # checksum no longer matches
    torch.save(tampered, cache)
    assert torch.equal(teacher_logits(teacher, splits, "val"), first)


def test_logits_are_computed_in_eval_mode():
    teacher = load_teacher("mnist5k-cnn")
    teacher.model.train()  # dropout on: logits would be random if eval mode were not forced
    splits = load_dataset("mnist5k")
    logits = teacher_logits(teacher, splits, "test")
    assert torch.allclose(logits, teacher_logits(teacher, splits, "test"))
    (cache_file,) = list((teachers.subdir("cache")).glob("logits-*-test.pt"))
    cache_file.unlink()
    assert torch.allclose(teacher_logits(teacher, splits, "test"), logits, atol=1e-5)
