"""Benchmark: Distill Explorer's lockstep pair run against a tutorial-style distillation loop.

Both train the same two students (a hard-label baseline and a distilled one) on the same mnist5k transfer set, with
the same architecture, batch size, optimizer, epochs and per-epoch evaluation. Only the loop differs:

- tutorial-style: per-sample PIL -> tensor transforms through a DataLoader, a teacher forward pass on every batch,
  and the two students trained one after the other;
- pair run (`distill_core.train_pair`): the split held as tensors, batches taken by randperm index, teacher logits
  read from the cache, both students stepped in lockstep.

It prints the median wall time of each (several runs, interleaved so machine noise hits both), their ratio, and the
pair run's achieved FLOP/s as a fraction of this machine's matmul peak measured in the same process.

    python -m benchmarks.pair_vs_tutorial --epochs 3 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import functional as TF

from distill_core import TrainConfig, load_dataset, load_teacher, train_pair, transfer_indices
from distill_core.models import build_model
from distill_core.teachers import teacher_logits
from distill_core.temperature import kd_loss


class PilDigits(Dataset):
    """The transfer set as PIL images, converted per sample the way tutorials do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = [TF.to_pil_image((image * 255).to(torch.uint8)) for image in images]  # (1, 28, 28) each
        self.labels = labels.tolist()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return TF.to_tensor(self.images[index]), self.labels[index]


def tutorial_run(config: TrainConfig, splits, teacher) -> float:
    """Baseline first, then the distilled student, each with a DataLoader; returns seconds."""
    transfer = transfer_indices(splits.train.labels, num_classes=10, seed=config.seed)
    train = PilDigits(splits.train.images[transfer], splits.train.labels[transfer])
    evaluation = {
        name: PilDigits(split.images, split.labels) for name, split in (("val", splits.val), ("test", splits.test))
    }
    torch.manual_seed(config.seed)
    initial = build_model(config.student, splits.info)
    start = time.perf_counter()
    for distilled in (False, True):
        student = copy.deepcopy(initial)
        optimizer = torch.optim.Adam(student.parameters(), lr=config.lr)
        loader = DataLoader(train, batch_size=config.batch_size, shuffle=True)
        for _ in range(config.epochs):
            student.train()
            for images, labels in loader:
                logits = student(images)
                if distilled:
                    with torch.no_grad():
                        targets = teacher.model(images)  # a teacher forward on every batch
                    loss = kd_loss(logits, targets, labels, config.temperature, config.alpha)
                else:
                    loss = F.cross_entropy(logits, labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            for dataset in evaluation.values():  # the same per-epoch evaluation the pair run does
                _loader_accuracy(student, dataset)
    return time.perf_counter() - start


@torch.no_grad()
def _loader_accuracy(model: torch.nn.Module, dataset: Dataset) -> float:
    model.eval()
    correct = total = 0
    for images, labels in DataLoader(dataset, batch_size=1000):
        correct += int((model(images).argmax(1) == labels).sum())
        total += len(labels)
    return correct / total


def matmul_peak_flops(size: int = 2048, repeats: int = 10) -> float:
    """Median FLOP/s of a square float32 matmul: the machine's practical ceiling for these MLPs."""
    left, right = torch.randn(size, size), torch.randn(size, size)
    left @ right
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        left @ right
        timings.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(timings)


def pair_run_flops(config: TrainConfig, splits) -> float:
    """Dense-layer FLOPs of a pair run: 6 per weight per training example (forward + backward), 2 per eval example."""
    model = build_model(config.student, splits.info)
    weights = sum(module.weight.numel() for module in model.modules() if isinstance(module, torch.nn.Linear))
    train_examples = len(splits.train) * config.epochs
    eval_examples = (len(splits.val) + len(splits.test)) * config.epochs
    return 2 * (6 * weights * train_examples + 2 * weights * eval_examples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--student", default="mlp:800-800")
    args = parser.parse_args()
    config = TrainConfig(student=args.student, epochs=args.epochs, temperature=4.0, alpha=0.9, device="cpu")
    splits = load_dataset("mnist5k")
    teacher = load_teacher("mnist5k-cnn")
    teacher_logits(teacher, splits, "train")  # warm the cache once, as the app does at start-up

    pair_times, tutorial_times = [], []
    for _ in range(args.repeats):  # interleaved, so slow phases of the machine hit both loops
        pair_times.append(train_pair(config).timing["seconds"])
        tutorial_times.append(tutorial_run(config, splits, teacher))
    pair, tutorial = statistics.median(pair_times), statistics.median(tutorial_times)
    peak = matmul_peak_flops()
    achieved = pair_run_flops(config, splits) / pair

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")  # fmt: skip
    print(f"workload: {args.student}, {args.epochs} epochs, batch {config.batch_size}, {len(splits.train)} examples")
    print(f"tutorial-style loop : median {tutorial:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in tutorial_times)})")
    print(f"pair run (lockstep) : median {pair:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in pair_times)})")
    print(f"speed-up            : {tutorial / pair:.2f}x")
    print(f"matmul peak         : {peak / 1e9:.1f} GFLOP/s")
    print(f"pair run achieved   : {achieved / 1e9:.1f} GFLOP/s = {achieved / peak:.0%} of peak")


if __name__ == "__main__":
    main()
