"""The command line: `python -m distill_core SUBCOMMAND`.

Subcommands: `teacher train`, `teacher import`, `teacher list`, `train`, `runs list`, `runs export`, `runs delete`
and `data download`. Every invalid value ends with exit code 2 and one line that names the flag, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from .data import DATASETS, DEFAULT_DATASET, download_dataset, get_info, parse_classes
from .devices import DEVICE_CHOICES
from .reports import parse_seeds
from .runs import delete_run, execute_pair_run, run_report
from .store import RunStore, StoreError
from .teacher_training import TeacherConfig, train_teacher
from .teachers import default_teacher, import_teacher, list_teachers
from .training import OPTIMIZERS, TrainConfig, summarize_seeds

USAGE_ERROR = 2
_Config = TypeVar("_Config", TrainConfig, TeacherConfig)
_TRAIN_DEFAULTS = TrainConfig()


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; we promise one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _flag_message(message: str) -> str:
    """Name the CLI flag instead of the config field a ValueError mentions ("batch_size" -> "--batch-size")."""
    if "--" in message:  # already names its flag
        return message
    names = "|".join(sorted((f.name for f in fields(TrainConfig)), key=len, reverse=True))
    return re.sub(rf"\b({names})\b", lambda m: "--" + m.group(1).replace("_", "-"), message, count=1)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to render --help in the README)."""
    parser = _OneLineParser(
        prog="python -m distill_core",
        description="Distill Explorer: train teachers, run paired distillation experiments, inspect runs.",
    )
    parser.add_argument("--data-dir", help="data directory (default: $DISTILL_HOME or ~/.local/share/distill-explorer)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    _add_teacher_commands(commands)
    _add_train_command(commands)
    _add_runs_commands(commands)
    data = commands.add_parser("data", help="datasets").add_subparsers(dest="action", required=True)
    download = data.add_parser("download", help="download a torchvision dataset (needs internet)")
    download.add_argument("name", choices=[name for name, info in DATASETS.items() if info.source != "bundled"])
    download.set_defaults(handler=_cmd_data_download)
    return parser


def _add_teacher_commands(commands: Any) -> None:
    teacher = commands.add_parser("teacher", help="train, import or list teachers")
    actions = teacher.add_subparsers(dest="action", required=True, parser_class=_OneLineParser)
    train = actions.add_parser("train", help="train a teacher", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--dataset", default=DEFAULT_DATASET, help="dataset name")
    train.add_argument("--architecture", default=TeacherConfig.architecture, help="architecture spec")
    train.add_argument("--epochs", type=int, default=TeacherConfig.epochs, help="training epochs")
    train.add_argument("--batch-size", type=int, default=TeacherConfig.batch_size, help="examples per minibatch")
    train.add_argument("--lr", type=float, default=TeacherConfig.lr, help="Adam learning rate")
    train.add_argument("--seed", type=int, default=0, help="initial weights, batch order, jitter")
    train.add_argument("--shift-pixels", type=int, default=TeacherConfig.shift_pixels, help="random +-pixel jitter")
    train.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="auto: cuda, mps, then cpu")
    train.add_argument("--name", default="", help="teacher name (default: <dataset>-<architecture>-s<seed>)")
    train.add_argument("--output", help="write the checkpoint here instead of the teachers folder")
    train.set_defaults(handler=_cmd_teacher_train)
    imported = actions.add_parser("import", help="import a checkpoint safely (state_dict or safetensors)")
    imported.add_argument("path", help="checkpoint file (.pt state_dict or .safetensors)")
    imported.add_argument("--name", required=True, help="name for the imported teacher")
    imported.add_argument("--arch", help="architecture spec, if the file has no metadata")
    imported.add_argument("--dataset", help="dataset name, if the file has no metadata")
    imported.set_defaults(handler=_cmd_teacher_import)
    listed = actions.add_parser("list", help="list teachers")
    listed.set_defaults(handler=_cmd_teacher_list)


def _add_train_command(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train a hard-label baseline and a distilled student side by side",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = _TRAIN_DEFAULTS
    train.add_argument("--dataset", default=defaults.dataset, help="dataset name")
    train.add_argument("--teacher", default="", help="teacher name (default: the dataset's default teacher)")
    train.add_argument("--student", default=defaults.student, help="student spec: mlp:H1-H2-..., cnn-small, cnn")
    train.add_argument("--temperature", type=float, default=defaults.temperature, help="softmax temperature T")
    train.add_argument("--alpha", type=float, default=defaults.alpha, help="weight of the soft term, in [0, 1]")
    train.add_argument("--epochs", type=int, default=defaults.epochs, help="training epochs for both students")
    train.add_argument("--batch-size", type=int, default=defaults.batch_size, help="examples per minibatch")
    train.add_argument("--lr", type=float, default=defaults.lr, help="learning rate")
    train.add_argument("--optimizer", default=defaults.optimizer, choices=OPTIMIZERS, help="optimizer")
    train.add_argument("--seed", type=int, default=defaults.seed, help="initial weights, batch order, jitter")
    train.add_argument("--seeds", help="several seeds, e.g. 0,1,2: one stored run each, mean +- std of the gain")
    train.add_argument(
        "--train-fraction", type=float, default=defaults.train_fraction, help="share of the train split to use"
    )
    train.add_argument("--omit-classes", default="", help="classes left out of the transfer set, e.g. 3 or 3,5")
    train.add_argument("--only-classes", default="", help="keep only these classes in the transfer set")
    train.add_argument("--shift-pixels", type=int, default=defaults.shift_pixels, help="random +-pixel jitter")
    train.add_argument("--device", default=defaults.device, choices=DEVICE_CHOICES, help="auto: cuda, mps, then cpu")
    train.add_argument("--json", metavar="PATH", help="write the run's results as JSON to PATH")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_cmd_train)


def _add_runs_commands(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list, export or delete stored runs")
    actions = runs.add_subparsers(dest="action", required=True, parser_class=_OneLineParser)
    listed = actions.add_parser("list", help="list stored runs, newest first")
    listed.add_argument("--limit", type=int, default=20)
    listed.set_defaults(handler=_cmd_runs_list)
    export = actions.add_parser("export", help="export one run")
    export.add_argument("run_id")
    export.add_argument("--format", choices=("csv", "json"), default="json")
    export.add_argument("--output", help="write to this file instead of standard output")
    export.set_defaults(handler=_cmd_runs_export)
    delete = actions.add_parser("delete", help="delete one run and its history")
    delete.add_argument("run_id")
    delete.set_defaults(handler=_cmd_runs_delete)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except (ValueError, StoreError) as error:
        message = _flag_message(str(error).splitlines()[0]) if args.command == "train" else str(error)
        print(f"error: {message.splitlines()[0]}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _config_from_args(args: argparse.Namespace, seed: int) -> TrainConfig:
    info = get_info(args.dataset)
    omit = parse_classes(args.omit_classes, info, argument="--omit-classes")
    only = parse_classes(args.only_classes, info, argument="--only-classes")
    return _config_from(TrainConfig, args, seed=seed, omit_classes=omit, only_classes=only)


def _config_from(cls: type[_Config], args: argparse.Namespace, **overrides: Any) -> _Config:
    """Build a config dataclass from the flags of the same names (the flag --batch-size is field batch_size)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**{**values, **overrides})


def _cmd_train(args: argparse.Namespace) -> int:
    seeds = parse_seeds(args.seeds) if args.seeds else [args.seed]
    configs = [_config_from_args(args, seed) for seed in seeds]
    store = RunStore(data_dir=args.data_dir)
    teacher = configs[0].teacher or default_teacher(configs[0].dataset, args.data_dir)
    stop = _stop_on_interrupt()
    reports = []
    for config in configs:
        run_id = store.create_run(config.to_dict(), kind="pair", teacher_id=teacher, owner="cli")
        progress = None if args.quiet or not sys.stderr.isatty() else _ProgressBar(config.epochs)
        on_event = None if progress is None else progress.update
        try:
            execute_pair_run(run_id, config.to_dict(), store, stop.is_set, args.data_dir, on_event=on_event)
        except ValueError as error:  # e.g. a missing dataset: the stored run must not stay "running"
            store.set_status(run_id, "failed", str(error).splitlines()[0])
            raise
        finally:
            if progress is not None:
                progress.close()
        record = store.get_run(run_id)
        assert record is not None  # just written by this process
        reports.append(run_report(record, store.history(run_id)))
        _print_summary(reports[-1])
        if record.status != "completed":
            break
    completed = [report for report in reports if report["status"] == "completed"]
    document = reports[0] if len(reports) == 1 else {"runs": reports, "seeds": _seed_summary(completed)}
    if len(completed) > 1:
        gain = document["seeds"]["gain"]
        print(f"gain over {len(completed)} seeds: {100 * gain['mean']:+.2f} ± {100 * gain['std']:.2f} points")
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2))
    return 0 if len(completed) == len(configs) else 1


def _stop_on_interrupt() -> threading.Event:
    """Ctrl-C asks the run to stop at the next step, so the store records it as cancelled, not lost."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    return stop


def _seed_summary(reports: list[dict[str, Any]]) -> dict[str, Any]:
    return summarize_seeds(
        [report["config"]["seed"] for report in reports],
        [report["baseline"]["test_accuracy"] for report in reports],
        [report["distilled"]["test_accuracy"] for report in reports],
    )


class _ProgressBar:
    """A one-line progress bar on stderr, redrawn on each epoch event (only on a terminal)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def update(self, event: dict[str, Any]) -> None:
        done = min(float(event["epoch"]) / self.epochs, 1.0)
        bar = "#" * int(done * 30)
        accuracy = event.get("distilled_test_accuracy")
        shown = f" distilled {accuracy:.1%}" if accuracy is not None else ""
        sys.stderr.write(f"\r[{bar:<30}] epoch {event['epoch']:.1f}/{self.epochs}{shown}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def _print_summary(report: dict[str, Any]) -> None:
    baseline, distilled = report["baseline"], report["distilled"]
    print(f"run {report['run_id']}: {report['status']} in {report['timing']['seconds']:.1f} s")
    if "test_accuracy" not in baseline:
        return
    print(f"  baseline  test accuracy {baseline['test_accuracy']:.2%}")
    print(f"  distilled test accuracy {distilled['test_accuracy']:.2%}")
    corrected = distilled.get("bias_corrected")
    if corrected:
        print(f"  distilled, bias-corrected on validation: {corrected['test_accuracy']:.2%}")
    for cls in report["config"]["omit_classes"]:
        base, dist = baseline["per_class_accuracy"][cls], distilled["per_class_accuracy"][cls]
        fixed = f", bias-corrected {corrected['per_class_accuracy'][cls]:.1%}" if corrected else ""
        print(f"  class {cls} (never seen): baseline {base:.1%}, distilled {dist:.1%}{fixed}")


def _cmd_teacher_train(args: argparse.Namespace) -> int:
    config = _config_from(TeacherConfig, args)

    def report(event: dict[str, Any]) -> None:
        print(f"epoch {event['epoch']}/{event['epochs']}: val accuracy {event['val_accuracy']:.2%}", flush=True)

    command = "python -m distill_core " + " ".join(sys.argv[1:])
    path, metadata = train_teacher(config, on_event=report, data_dir=args.data_dir, output=args.output, command=command)
    print(f"saved {path}: val {metadata['val_accuracy']:.2%}, test {metadata['test_accuracy']:.2%}")
    return 0


def _cmd_teacher_import(args: argparse.Namespace) -> int:
    info = import_teacher(args.path, args.name, args.data_dir, architecture=args.arch, dataset=args.dataset)
    print(f"imported teacher {info.name!r} ({info.dataset}, {info.metadata.get('architecture')}) to {info.path}")
    return 0


def _cmd_teacher_list(args: argparse.Namespace) -> int:
    for info in list_teachers(args.data_dir):
        accuracy = f"{info.test_accuracy:.2%}" if info.test_accuracy is not None else "n/a"
        size = f"{info.size_bytes / 1e6:.1f} MB"
        print(f"{info.name:<28} {info.origin:<9} {info.dataset:<14} test {accuracy:>7}  {size}")
    return 0


def _cmd_runs_list(args: argparse.Namespace) -> int:
    store = RunStore(data_dir=args.data_dir)
    store.recover_interrupted()  # a run whose process died shows as interrupted, not forever running
    for record in store.list_runs(limit=args.limit):
        distilled = (record.metrics or {}).get("distilled", {}).get("test_accuracy")
        shown = f"{distilled:.2%}" if distilled is not None else "-"
        config = record.config
        summary = f"{config.get('student', '')} T={config.get('temperature', '')}" if record.kind == "pair" else ""
        print(f"{record.run_id}  {record.created_at[:19]}  {record.kind:<7} {record.status:<11} {shown:>7}  {summary}")
    return 0


def _cmd_runs_export(args: argparse.Namespace) -> int:
    store = RunStore(data_dir=args.data_dir)
    if args.format == "json":
        record = store.get_run(args.run_id)
        if record is None:
            raise ValueError(f"run {args.run_id!r} not found; see `python -m distill_core runs list`")
        text = json.dumps(run_report(record, store.history(args.run_id)), indent=2)
    else:
        text = store.export_run(args.run_id, "csv")
    _write_output(text, args.output)
    return 0


def _cmd_runs_delete(args: argparse.Namespace) -> int:
    store = RunStore(data_dir=args.data_dir)
    if not delete_run(store, args.run_id, args.data_dir):
        raise ValueError(f"run {args.run_id!r} not found; see `python -m distill_core runs list`")
    print(f"deleted run {args.run_id}")
    return 0


def _cmd_data_download(args: argparse.Namespace) -> int:
    path = download_dataset(args.name, args.data_dir)
    print(f"downloaded {args.name} to {path}")
    return 0


def _write_output(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
