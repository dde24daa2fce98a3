"""Teachers: the checkpoint format, safe loading, the teacher registry and the teacher-logits cache.

A checkpoint is a plain dict {"format", "metadata", "state_dict"} saved with torch.save and read back only with
`weights_only=True`, or a safetensors file whose header carries the same metadata as JSON. Nothing in a checkpoint
ever executes: anything that is not tensors and plain values is refused. Imported files are re-saved in the
canonical format under a validated name, so the user's bytes and file name never reach the teachers folder.

Teacher logits are computed once per (checkpoint content, dataset, split) and cached on disk with a checksum; a
cache file that fails any check is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .data import DatasetInfo, DatasetSplits, get_info
from .models import build_model, parse_spec, predict_logits
from .paths import subdir

FORMAT = "distill-explorer-teacher/1"
MAX_CHECKPOINT_BYTES = 100 * 1024 * 1024
BUNDLED_DIR = Path(__file__).parent / "assets" / "teachers"
DEFAULT_TEACHERS = {"mnist5k": "mnist5k-cnn"}
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SAFETENSORS_KEY = "distill_explorer"


@dataclass(frozen=True)
class TeacherInfo:
    """A teacher on disk: where it is, where it came from, and what its metadata says."""

    name: str
    path: Path
    origin: str  # "bundled", "trained" or "imported"
    metadata: dict[str, Any]
    size_bytes: int

    @property
    def dataset(self) -> str:
        return str(self.metadata.get("dataset", ""))

    @property
    def test_accuracy(self) -> float | None:
        value = self.metadata.get("test_accuracy")
        return None if value is None else float(value)


@dataclass
class Teacher:
    """A loaded teacher, in eval mode, with the hash that keys its logits cache."""

    name: str
    model: nn.Module
    metadata: dict[str, Any]
    info: DatasetInfo
    content_hash: str


def validate_name(name: str) -> str:
    """Teacher names become file names, so they are restricted to a safe alphabet."""
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"teacher name {name!r} is not allowed; use 1-64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes (first 16 hex digits): the identity of a checkpoint's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def save_checkpoint(path: Path, model: nn.Module, metadata: dict[str, Any]) -> Path:
    """Write the canonical checkpoint atomically (a crash never leaves half a teacher behind)."""
    # A JSON round trip turns str subclasses (torch.__version__ is one) into plain values the safe loader accepts.
    metadata = json.loads(json.dumps(metadata))
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    payload = {"format": FORMAT, "metadata": metadata, "state_dict": state}
    _atomic_torch_save(payload, path)
    return path


def _atomic_torch_save(payload: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(payload, tmp_name)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; checkpoints and caches are meant to be shared
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read (state_dict, metadata) from a file without executing anything in it.

    Raises ValueError with a one-line reason for: a missing, empty, oversized, truncated or random file, a pickle
    that carries code, or content that is not a state_dict.
    """
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"checkpoint {str(file)!r} does not exist")
    size = file.stat().st_size
    if size == 0:
        raise ValueError(f"checkpoint {file.name!r} is empty")
    if size > MAX_CHECKPOINT_BYTES:
        raise ValueError(
            f"checkpoint {file.name!r} is {size / 1e6:.0f} MB, over the {MAX_CHECKPOINT_BYTES / 1e6:.0f} MB limit"
        )
    if _looks_like_safetensors(file):
        return _read_safetensors(file)
    return _read_torch(file)


def _looks_like_safetensors(file: Path) -> bool:
    # safetensors starts with an 8-byte little-endian header length followed by a JSON object.
    with open(file, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{" and not zipfile.is_zipfile(file)


def _read_safetensors(file: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as handle:
            header = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"checkpoint {file.name!r} is not a valid safetensors file ({error})") from None
    try:
        metadata = json.loads(header.get(_SAFETENSORS_KEY, "{}"))
    except json.JSONDecodeError:
        raise ValueError(f"checkpoint {file.name!r} has unreadable metadata in its safetensors header") from None
    return state, metadata if isinstance(metadata, dict) else {}


def _read_torch(file: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        # weights_only=True: the restricted unpickler accepts tensors and plain containers and refuses any
        # global it does not know, so a pickled __reduce__ payload is rejected instead of run.
        with warnings.catch_warnings():  # foreign pickles trigger a protocol warning; the refusal says enough
            warnings.simplefilter("ignore", UserWarning)
            payload = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickler_reason(str(error))
        raise ValueError(f"checkpoint {file.name!r} was refused by the safe loader: {reason}") from None
    except Exception as error:  # damaged files surface as many types (RuntimeError, EOFError, IndexError, ...)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"checkpoint {file.name!r} is not a readable PyTorch file ({reason})") from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        state, metadata = payload.get("state_dict"), payload.get("metadata")
    else:
        state, metadata = payload, {}
    if not isinstance(metadata, dict) or not _is_state_dict(state):
        raise ValueError(f"checkpoint {file.name!r} does not hold a state_dict (a mapping of names to tensors)")
    return dict(state), metadata


def _unpickler_reason(message: str) -> str:
    """The informative part of torch's weights_only refusal (the global or opcode it would not load)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for number, line in enumerate(lines):
        if "WeightsUnpickler error:" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].strip()
            detail = detail or (lines[number + 1] if number + 1 < len(lines) else "")
            return detail.split(". Please use")[0] or "it contains objects other than tensors"
    return "it contains objects other than tensors and plain values"


def _is_state_dict(state: object) -> bool:
    return (
        isinstance(state, dict)
        and bool(state)
        and all(isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items())
    )


def build_teacher_model(
    state: dict[str, torch.Tensor], metadata: dict[str, Any], name: str = "checkpoint"
) -> tuple[nn.Module, DatasetInfo]:
    """Build the architecture the metadata names and load the weights strictly, or raise ValueError."""
    architecture = metadata.get("architecture")
    dataset = metadata.get("dataset")
    if not architecture or not dataset:
        raise ValueError(
            f"{name} does not say its architecture and dataset; pass --arch and --dataset when importing it"
        )
    info = get_info(str(dataset))
    model = build_model(parse_spec(str(architecture)), info)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise ValueError(
            f"{name} does not fit architecture {architecture!r} for {dataset} ({info.num_classes} classes): {detail}"
        ) from None
    if not all(torch.isfinite(tensor).all() for tensor in state.values() if tensor.is_floating_point()):
        raise ValueError(f"{name} contains NaN or infinite weights")
    return model.eval(), info


def teachers_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    return subdir("teachers", data_dir)


def list_teachers(data_dir: str | os.PathLike[str] | None = None, dataset: str | None = None) -> list[TeacherInfo]:
    """The bundled teachers, then the user's trained and imported ones; unreadable files are skipped."""
    found = [_describe(path, "bundled") for path in sorted(BUNDLED_DIR.glob("*.pt"))]
    for path in sorted(teachers_dir(data_dir).glob("*.pt")):
        info = _describe(path, None)
        if info is not None and all(other is None or other.name != info.name for other in found):
            found.append(info)
    return [info for info in found if info is not None and (dataset is None or info.dataset == dataset)]


def _describe(path: Path, origin: str | None) -> TeacherInfo | None:
    try:
        _, metadata = read_checkpoint(path)
    except ValueError:
        return None
    return TeacherInfo(
        name=path.stem,
        path=path,
        origin=origin or str(metadata.get("origin", "trained")),
        metadata=metadata,
        size_bytes=path.stat().st_size,
    )


def default_teacher(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> str:
    """The teacher the app and CLI use when none is named: the bundled one, else the newest trained one."""
    if dataset in DEFAULT_TEACHERS:
        return DEFAULT_TEACHERS[dataset]
    candidates = list_teachers(data_dir, dataset)
    if candidates:
        return max(candidates, key=lambda info: info.path.stat().st_mtime).name
    raise ValueError(
        f"no default teacher for dataset {dataset!r}; train one with "
        f"`python -m distill_core teacher train --dataset {dataset}` and pass --teacher NAME"
    )


def find_teacher(name: str, data_dir: str | os.PathLike[str] | None = None) -> TeacherInfo:
    """Look a teacher up by name, with a message listing the available ones when it is missing."""
    teachers = list_teachers(data_dir)
    for info in teachers:
        if info.name == name:
            return info
    names = ", ".join(info.name for info in teachers) or "none"
    raise ValueError(f"unknown teacher {name!r}; available: {names}")


def load_teacher(name: str, data_dir: str | os.PathLike[str] | None = None) -> Teacher:
    """Load a registered teacher by name, in eval mode."""
    info = find_teacher(name, data_dir)
    state, metadata = read_checkpoint(info.path)
    model, dataset_info = build_teacher_model(state, metadata, f"teacher {name!r}")
    return Teacher(name, model, metadata, dataset_info, file_hash(info.path))


def import_teacher(
    path: str | os.PathLike[str],
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    architecture: str | None = None,
    dataset: str | None = None,
) -> TeacherInfo:
    """Validate a checkpoint completely, then store a canonical copy of it as teacher `name`."""
    validate_name(name)
    if name in {info.name for info in list_teachers(data_dir)}:
        raise ValueError(f"a teacher named {name!r} already exists; choose another --name")
    state, metadata = read_checkpoint(path)
    metadata = {
        **metadata,
        **{k: v for k, v in {"architecture": architecture, "dataset": dataset}.items() if v},
    }
    model, _ = build_teacher_model(state, metadata, f"checkpoint {Path(path).name!r}")
    metadata = {**metadata, "origin": "imported", "name": name}
    target = save_checkpoint(teachers_dir(data_dir) / f"{name}.pt", model, metadata)
    return TeacherInfo(name, target, "imported", metadata, target.stat().st_size)


def teacher_logits(
    teacher: Teacher, splits: DatasetSplits, split: str, data_dir: str | os.PathLike[str] | None = None
) -> torch.Tensor:
    """Teacher logits (N, K) for one split, on the split's device, from the disk cache when it is sound."""
    images = splits.split(split).images
    cache = subdir("cache", data_dir) / f"logits-{teacher.content_hash}-{splits.info.name}-{split}.pt"
    cached = _read_logits_cache(cache, expected_rows=len(images), num_classes=splits.info.num_classes)
    if cached is not None:
        return cached.to(images.device)
    model = teacher.model.to(images.device)
    logits = predict_logits(model, images).float()  # (N, K), eval mode, no grad
    _atomic_torch_save({"logits": logits.cpu(), "checksum": _tensor_checksum(logits.cpu())}, cache)
    return logits


def _read_logits_cache(cache: Path, expected_rows: int, num_classes: int) -> torch.Tensor | None:
    if not cache.is_file():
        return None
    try:
        payload = torch.load(cache, map_location="cpu", weights_only=True)
        logits = payload["logits"]
        sound = (
            isinstance(logits, torch.Tensor)
            and logits.shape == (expected_rows, num_classes)
            and payload["checksum"] == _tensor_checksum(logits)
        )
    except Exception:  # any failure to read the cache means "recompute", never a crash
        return None
    return logits if sound else None


def _tensor_checksum(tensor: torch.Tensor) -> str:
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()
