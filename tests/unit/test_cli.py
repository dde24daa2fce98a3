"""The command line, run as a real subprocess: exit codes, one-line errors and the JSON schema."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distill_core.cli import main
from distill_core.data import get_info
from distill_core.models import build_model
from distill_core.store import RunStore

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env_home):
    env = {**os.environ, "DISTILL_HOME": str(env_home), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "distill_core", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_train_smoke_run_writes_the_documented_json(tmp_path, distill_home):
    out = tmp_path / "out.json"
    done = cli(
        "train", "--student", "mlp:32", "--epochs", "2", "--train-fraction", "0.2", "--batch-size", "64",
        "--omit-classes", "3", "--alpha", "1", "--temperature", "8", "--json", str(out), env_home=distill_home,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert set(report) >= {"run_id", "config", "teacher", "baseline", "distilled", "timing"}
    assert report["teacher"]["name"] == "mnist5k-cnn" and report["teacher"]["test_accuracy"] > 0.97
    assert report["config"]["omit_classes"] == [3] and report["config"]["temperature"] == 8
    for student in ("baseline", "distilled"):
        assert len(report[student]["per_class_accuracy"]) == 10
        history = report[student]["history"]
        assert [row["epoch"] for row in history] == [1.0, 2.0]
        assert history[-1]["test_accuracy"] == report[student]["test_accuracy"]
    corrected = report["distilled"]["bias_corrected"]
    assert set(corrected) >= {"class_bias", "test_accuracy", "per_class_accuracy"}
    assert report["timing"]["seconds"] > 0 and report["timing"]["samples_per_second"] > 0
    assert f"run {report['run_id']}: completed" in done.stdout

    listed = cli("runs", "list", env_home=distill_home)
    assert report["run_id"] in listed.stdout
    exported = cli("runs", "export", report["run_id"], "--format", "json", env_home=distill_home)
    assert json.loads(exported.stdout)["distilled"]["test_accuracy"] == report["distilled"]["test_accuracy"]
    csv_text = cli("runs", "export", report["run_id"], "--format", "csv", env_home=distill_home).stdout
    assert csv_text.splitlines()[0].count(",") > 5 and len(csv_text.splitlines()) == 3  # header + 2 epochs


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--temperature", "0"], "--temperature"),
        (["--temperature", "-2"], "--temperature"),
        (["--temperature", "nan"], "--temperature"),
        (["--alpha", "1.5"], "--alpha"),
        (["--epochs", "0"], "--epochs"),
        (["--lr", "0"], "--lr"),
        (["--batch-size", "0"], "--batch-size"),
        (["--student", "mlp:banana"], "spec"),
        (["--omit-classes", "0,1,2,3,4,5,6,7,8,9"], "omit"),
        (["--omit-classes", "12"], "--omit-classes"),
        (["--only-classes", "dog"], "--only-classes"),
        (["--dataset", "imagenet"], "imagenet"),
        (["--epochs", "many"], "--epochs"),
        (["--train-fraction", "2"], "--train-fraction"),
        (["--teacher", "nobody"], "nobody"),
    ],
)
def test_invalid_train_values_exit_2_with_one_line_naming_the_flag(args, flag, capsys):
    assert exit_code(["train", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0]


def exit_code(argv):
    """Run the CLI in-process (the same code path as `python -m distill_core`, without a torch import per case)."""
    try:
        return main(argv)
    except SystemExit as exited:  # argparse's own errors exit instead of returning
        return exited.code


def test_a_subprocess_reports_a_bad_value_without_a_traceback(distill_home):
    done = cli("train", "--temperature", "0", env_home=distill_home)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "--temperature" in done.stderr


def test_importing_a_bad_checkpoint_exits_2_with_one_line(tmp_path, distill_home):
    bad = tmp_path / "random.pt"
    bad.write_bytes(os.urandom(2048))
    done = cli("teacher", "import", str(bad), "--name", "junk", env_home=distill_home)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "random.pt" in done.stderr


def test_importing_a_good_state_dict_then_listing_it(tmp_path, distill_home):
    path = tmp_path / "small.pt"
    torch.save(build_model("mlp:30", get_info("mnist5k")).state_dict(), path)
    done = cli("teacher", "import", str(path), "--name", "small", "--arch", "mlp:30", "--dataset", "mnist5k",
               env_home=distill_home)  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = cli("teacher", "list", env_home=distill_home).stdout
    assert "small" in listed and "mnist5k-cnn" in listed


def test_unknown_run_and_missing_dataset_are_clear(capsys):
    assert main(["runs", "export", "nope", "--format", "json"]) == 2
    assert "runs list" in capsys.readouterr().err
    assert main(["train", "--dataset", "fashion-mnist", "--teacher", "mnist5k-cnn"]) == 2
    assert "download" in capsys.readouterr().err
    (failed,) = RunStore().list_runs()  # the run was recorded, and it does not stay "running"
    assert failed.status == "failed" and "download" in failed.error


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0 and "--omit-classes" in out and "(default: 4.0)" in out


def test_several_seeds_give_one_run_each_and_the_gain_summary(tmp_path, capsys):
    out = tmp_path / "seeds.json"
    argv = ["train", "--student", "mlp:16", "--epochs", "1", "--train-fraction", "0.1", "--batch-size", "64",
            "--seeds", "0,1", "--quiet", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    document = json.loads(out.read_text())
    assert [run["config"]["seed"] for run in document["runs"]] == [0, 1]
    gains = [run["distilled"]["test_accuracy"] - run["baseline"]["test_accuracy"] for run in document["runs"]]
    assert document["seeds"]["gain"]["mean"] == pytest.approx(sum(gains) / 2)
    assert "gain over 2 seeds" in capsys.readouterr().out
