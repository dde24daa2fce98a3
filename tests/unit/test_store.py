"""The SQLite run store: round trips, WAL, concurrent writers (threads and processes), recovery of runs whose
process died, read-only and full-disk stores, exports and cascading deletes."""

from __future__ import annotations

import csv
import ctypes
import gc
import io
import json
import math
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

from distill_core.store import SCHEMA_VERSION, RunStore, StoreError

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "distill_core"

# Child processes run the real store code but skip the package __init__ (which may import torch), so each one
# starts in a few tens of milliseconds.
CHILD_PRELUDE = f"""
import sys, types
package = types.ModuleType("distill_core")
package.__path__ = [{str(PACKAGE_DIR)!r}]
sys.modules["distill_core"] = package
from distill_core.store import RunStore
"""

CONFIG = {"temperature": 4.0, "alpha": 0.9, "student": {"arch": "mlp", "hidden": [800, 800]}}


def run_child(code: str, *args: str) -> str:
    """Run `code` in a fresh Python process (args in sys.argv[1:]); return its stdout once it has exited."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def raw_rows(path: Path, query: str, parameters: tuple = ()) -> list[tuple]:
    """Read the database file directly, independent of RunStore."""
    with sqlite3.connect(path) as connection:
        return connection.execute(query, parameters).fetchall()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "runs.sqlite3"


@pytest.fixture
def store(db_path: Path) -> RunStore:
    return RunStore(db_path)


def test_default_path_is_in_the_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    assert RunStore().path == tmp_path / "home" / "runs.sqlite3"
    assert RunStore(data_dir=tmp_path / "explicit").path == tmp_path / "explicit" / "runs.sqlite3"
    assert (tmp_path / "explicit" / "runs.sqlite3").is_file()


def test_create_run_round_trip(store):
    run_id = store.create_run(CONFIG, teacher_id="cnn-abc", owner="session-1", label="T=4")
    record = store.get_run(run_id)
    assert len(run_id) == 12 and int(run_id, 16) >= 0
    assert record.config == CONFIG
    assert (record.kind, record.status, record.teacher_id, record.owner, record.label) == (
        "pair",
        "queued",
        "cnn-abc",
        "session-1",
        "T=4",
    )
    assert record.pid == os.getpid()
    assert record.started_at is None and record.finished_at is None and record.duration_seconds is None
    assert record.versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"torch", "torchvision", "distill_core"} <= set(record.versions)
    assert datetime.fromisoformat(record.created_at).utcoffset().total_seconds() == 0
    assert store.get_run("does-not-exist") is None


def test_lifecycle_events_and_finish(store):
    run_id = store.create_run(CONFIG)
    store.mark_running(run_id)
    running = store.get_run(run_id)
    assert running.status == "running" and running.started_at is not None
    events = [{"epoch": epoch, "step": 10 * epoch, "distilled_val_accuracy": 0.5 + epoch / 10} for epoch in (1, 2, 3)]
    assert [store.append_event(run_id, event) for event in events] == [1, 2, 3]
    store.finish_run(run_id, "completed", {"distilled": {"test_accuracy": 0.91}}, {"seconds": 1.5})

    record = store.get_run(run_id)
    assert store.history(run_id) == events
    assert record.status == "completed" and record.error is None
    assert record.metrics == {"distilled": {"test_accuracy": 0.91}} and record.timing == {"seconds": 1.5}
    expected = datetime.fromisoformat(record.finished_at) - datetime.fromisoformat(record.started_at)
    assert record.duration_seconds == pytest.approx(expected.total_seconds()) and record.duration_seconds >= 0
    # The indexed columns hold the event's epoch and step.
    assert raw_rows(store.path, "SELECT seq, epoch, step FROM events ORDER BY seq") == [
        (1, 1, 10),
        (2, 2, 20),
        (3, 3, 30),
    ]


def test_set_status_stamps_terminal_statuses_and_keeps_the_error(store):
    run_id = store.create_run(CONFIG)
    store.set_status(run_id, "failed", error="RuntimeError: boom")
    record = store.get_run(run_id)
    assert record.status == "failed" and record.error == "RuntimeError: boom" and record.finished_at


def test_bad_input_names_the_argument(store):
    run_id = store.create_run(CONFIG)
    with pytest.raises(ValueError, match="status"):
        store.set_status(run_id, "done")
    with pytest.raises(ValueError, match="status"):
        store.finish_run(run_id, "running", {}, {})
    with pytest.raises(ValueError, match="kind"):
        store.create_run(CONFIG, kind="student")
    with pytest.raises(ValueError, match="config"):
        store.create_run([("temperature", 4.0)])
    with pytest.raises(ValueError, match="event.*item"):
        store.append_event(run_id, {"loss": object()})
    with pytest.raises(ValueError, match="not found.*runs list"):
        store.append_event("missing", {"epoch": 1})
    with pytest.raises(ValueError, match="not found"):
        store.mark_running("missing")
    with pytest.raises(ValueError, match="limit"):
        store.list_runs(limit=0)
    with pytest.raises(ValueError, match="statuses"):
        store.list_runs(statuses=["done"])


def test_list_runs_newest_first_with_filters(store):
    first = store.create_run(CONFIG, owner="alice")
    second = store.create_run(CONFIG, owner="bob")
    third = store.create_run(CONFIG, owner="alice", kind="teacher")
    store.set_status(second, "cancelled")

    assert [record.run_id for record in store.list_runs()] == [third, second, first]
    assert [record.run_id for record in store.list_runs(limit=2)] == [third, second]
    assert [record.run_id for record in store.list_runs(owner="alice")] == [third, first]
    assert [record.run_id for record in store.list_runs(statuses=["cancelled"])] == [second]
    assert store.queued_run_ids() == [first, third]


def test_wal_mode_schema_version_and_reopening(store, db_path):
    run_id = store.create_run(CONFIG)
    assert raw_rows(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert raw_rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    reopened = RunStore(db_path)  # creating the schema again is harmless
    assert reopened.get_run(run_id).config == CONFIG


def test_a_store_from_a_newer_version_is_refused(store, db_path):
    raw_rows(db_path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        RunStore(db_path)


def test_delete_cascades_to_events(store, db_path):
    kept, deleted = store.create_run(CONFIG), store.create_run(CONFIG)
    for run_id in (kept, deleted):
        store.append_event(run_id, {"epoch": 1})
    assert store.delete_run(deleted) is True
    assert store.delete_run(deleted) is False
    assert raw_rows(db_path, "SELECT run_id, COUNT(*) FROM events GROUP BY run_id") == [(kept, 1)]
    assert store.get_run(deleted) is None and store.history(deleted) == []


def test_threads_append_without_collisions(store):
    run_id = store.create_run(CONFIG)
    threads = [
        threading.Thread(
            target=lambda writer=writer: [
                store.append_event(run_id, {"writer": writer, "index": index}) for index in range(50)
            ]
        )
        for writer in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = store.history(run_id)
    assert len(history) == 200
    for writer in range(4):
        assert [event["index"] for event in history if event["writer"] == writer] == list(range(50))


CONCURRENT_WRITER = """
import pathlib, time
store = RunStore(sys.argv[1])
run_id, writer, go = sys.argv[2], sys.argv[3], pathlib.Path(sys.argv[4])
print("ready", flush=True)
while not go.exists():  # start together with the other writer
    time.sleep(0.001)
for index in range(200):
    store.append_event(run_id, {"writer": writer, "index": index})
    if index % 10 == 0:
        store.create_run({"writer": writer, "index": index})
"""


def test_two_processes_append_concurrently_without_losing_rows(store, db_path, tmp_path):
    run_id = store.create_run(CONFIG)
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_PRELUDE + CONCURRENT_WRITER, str(db_path), run_id, name, str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready"
    go.touch()
    for writer in writers:
        assert writer.wait(timeout=60) == 0
        writer.stdout.close()

    seqs = [seq for (seq,) in raw_rows(db_path, "SELECT seq FROM events WHERE run_id = ? ORDER BY seq", (run_id,))]
    assert seqs == list(range(1, 401))
    history = store.history(run_id)
    for name in ("a", "b"):
        assert [event["index"] for event in history if event["writer"] == name] == list(range(200))
    # The writers really overlapped: neither wrote all its events in one uninterrupted block.
    writers = [event["writer"] for event in history]
    assert sum(before != after for before, after in zip(writers[:-1], writers[1:], strict=True)) >= 2
    assert len(store.list_runs()) == 1 + 2 * 20


def test_recover_interrupted_marks_only_runs_of_dead_processes(store, db_path):
    mine = store.create_run(CONFIG)  # queued by this (live) process
    dead_running = run_child(
        "store = RunStore(sys.argv[1]); run_id = store.create_run({}); store.mark_running(run_id);"
        " store.append_event(run_id, {'epoch': 1}); print(run_id)",
        str(db_path),
    ).strip()
    dead_queued = run_child("print(RunStore(sys.argv[1]).create_run({}))", str(db_path)).strip()
    live = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD_PRELUDE + "store = RunStore(sys.argv[1]); run_id = store.create_run({});"
            " store.mark_running(run_id); print(run_id, flush=True); sys.stdin.readline()",
            str(db_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        live_running = live.stdout.readline().strip()
        assert sorted(store.recover_interrupted()) == sorted([dead_running, dead_queued])
        assert store.get_run(live_running).status == "running"
    finally:
        live.communicate(input="exit\n", timeout=60)

    interrupted = store.get_run(dead_running)
    assert interrupted.status == "interrupted" and "exited before it finished" in interrupted.error
    assert interrupted.finished_at is not None
    assert store.history(dead_running) == [{"epoch": 1}]
    assert store.get_run(dead_queued).status == "interrupted"
    assert store.get_run(mine).status == "queued"
    assert store.recover_interrupted() == [live_running]  # its process has exited now


def test_a_previous_process_with_our_pid_counts_as_dead(store, db_path):
    # A restarted container's server often gets the same pid as the one that died; the process token tells
    # them apart. There is no API for another incarnation's token, so write one directly.
    run_id = store.create_run(CONFIG)
    store.mark_running(run_id)
    raw_rows(db_path, "UPDATE runs SET process_token = 'previous-incarnation' WHERE run_id = ?", (run_id,))
    assert store.recover_interrupted() == [run_id]
    assert store.get_run(run_id).status == "interrupted"


def test_export_csv_has_one_row_per_event_with_config_columns(store):
    run_id = store.create_run(CONFIG, teacher_id="cnn-abc", label="T=4")
    events = [
        {"epoch": 1, "step": 5, "distilled_val_accuracy": 0.8, "losses": {"soft": 0.25}},
        {"epoch": 2, "step": 10, "distilled_val_accuracy": 0.875, "losses": {"soft": 0.125}},
    ]
    for event in events:
        store.append_event(run_id, event)

    rows = list(csv.DictReader(io.StringIO(store.export_run(run_id, "csv"))))
    assert len(rows) == 2
    assert [row["seq"] for row in rows] == ["1", "2"]
    assert [float(row["distilled_val_accuracy"]) for row in rows] == [0.8, 0.875]
    assert [float(row["losses.soft"]) for row in rows] == [0.25, 0.125]
    assert {row["config.temperature"] for row in rows} == {"4.0"}
    assert json.loads(rows[0]["config.student.hidden"]) == [800, 800]
    assert {(row["run_id"], row["teacher_id"], row["label"]) for row in rows} == {(run_id, "cnn-abc", "T=4")}


def test_export_json_is_strict_json_with_history(store):
    run_id = store.create_run(CONFIG)
    store.mark_running(run_id)
    store.append_event(run_id, {"epoch": 1, "distilled_train_loss": float("nan")})
    store.finish_run(run_id, "diverged", {"distilled": {"train_loss": float("inf")}}, {"seconds": 0.5})

    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    document = json.loads(store.export_run(run_id, "json"), parse_constant=reject)
    assert document["run_id"] == run_id and document["status"] == "diverged"
    assert document["config"] == CONFIG
    assert document["history"] == [{"epoch": 1, "distilled_train_loss": None}]
    assert document["metrics"] == {"distilled": {"train_loss": None}}
    assert document["duration_seconds"] >= 0
    # The store itself keeps the NaN: only the export replaces it.
    assert math.isnan(store.history(run_id)[0]["distilled_train_loss"])


def test_export_rejects_unknown_format_and_run(store):
    run_id = store.create_run(CONFIG)
    with pytest.raises(ValueError, match="fmt"):
        store.export_run(run_id, "xlsx")
    with pytest.raises(ValueError, match="not found; see `python -m distill_core runs list`"):
        store.export_run("missing", "json")


# ----------------------------------------------------------------------------------------- unwritable stores


def drop_permission_override() -> None:
    """Drop CAP_DAC_OVERRIDE from this process (Linux capset(2)), so file modes bind even for root.

    The tests run as root, for whom chmod alone stops nothing. Without this capability root obeys the mode
    bits like any user; for a non-root user it is a no-op.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()  # two (effective, permitted, inheritable) words
    if libc.capget(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    cap_dac_override = 1 << 1
    data[0] &= ~cap_dac_override  # effective
    data[1] &= ~cap_dac_override  # permitted
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def in_forked_child_without_override(function) -> dict:
    """Run function() in a forked child that cannot bypass file permissions; return its JSON-able result."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: always leave through os._exit, never back into pytest
        os.close(read_end)
        try:
            drop_permission_override()
            payload = {"result": function()}
        except BaseException as error:
            payload = {"error": repr(error)}
        with os.fdopen(write_end, "w") as pipe:
            json.dump(payload, pipe)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        payload = json.load(pipe)
    os.waitpid(pid, 0)
    assert "error" not in payload, payload
    return payload["result"]


@pytest.mark.parametrize("wal_files", ["removed", "present"])
def test_read_only_store_can_be_read_but_not_written(db_path, wal_files):
    seeded = RunStore(db_path)
    run_id = seeded.create_run(CONFIG)
    seeded.append_event(run_id, {"epoch": 1})
    if wal_files == "removed":
        # Closing the last connection checkpoints and deletes the WAL files; a connection sits in a reference
        # cycle (its statement cache), so only the cycle collector frees it.
        del seeded
        gc.collect()
    assert (db_path.parent / "runs.sqlite3-wal").exists() == (wal_files == "present")
    for path in db_path.parent.iterdir():
        path.chmod(0o444)
    db_path.parent.chmod(0o555)

    def use_read_only_store() -> dict:
        # Proof that the setup works: even this process cannot create a file in the folder.
        try:
            (db_path.parent / "probe").touch()
            return {"probe": "created"}
        except PermissionError:
            pass
        store = RunStore(db_path)
        outcome = {"runs": [record.run_id for record in store.list_runs()], "history": store.history(run_id)}
        for name, write in (
            ("create", lambda: store.create_run(CONFIG)),
            ("append", lambda: store.append_event(run_id, {"epoch": 2})),
            ("cancel", lambda: store.set_status(run_id, "cancelled")),
        ):
            try:
                write()
                outcome[name] = "written"
            except StoreError as error:
                outcome[name] = str(error)
        return outcome

    try:
        outcome = in_forked_child_without_override(use_read_only_store)
    finally:
        db_path.parent.chmod(0o755)
        for path in db_path.parent.iterdir():
            path.chmod(0o644)

    assert outcome["runs"] == [run_id] and outcome["history"] == [{"epoch": 1}]
    for name in ("create", "append", "cancel"):
        assert outcome[name].startswith(f"the run store at {db_path} is not writable")
        assert "check permissions or free disk space, or set DISTILL_HOME" in outcome[name]
    assert RunStore(db_path).get_run(run_id).status == "queued"  # nothing was written


def test_a_missing_store_in_a_read_only_folder_raises_store_error(tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        message = in_forked_child_without_override(lambda: _store_error_of(lambda: RunStore(parent / "new" / "r.db")))
    finally:
        parent.chmod(0o755)
    assert message.startswith(f"the run store at {parent / 'new' / 'r.db'} is not writable")


def _store_error_of(action) -> str:
    try:
        action()
    except StoreError as error:
        return str(error)
    return "no error"


class FullDiskStore(RunStore):
    """A store whose file may not grow: SQLite's max_page_count raises the same SQLITE_FULL as a full disk."""

    def _connect(self, uri=None):
        connection = super()._connect(uri)
        (pages,) = connection.execute("PRAGMA page_count").fetchone()
        connection.execute(f"PRAGMA max_page_count = {pages}")
        return connection


def test_full_disk_raises_store_error_and_keeps_earlier_data(store, db_path):
    run_id = store.create_run(CONFIG)
    store.append_event(run_id, {"epoch": 1})
    full = FullDiskStore(db_path)
    with pytest.raises(StoreError, match="is not writable: database or disk is full; check permissions"):
        full.append_event(run_id, {"epoch": 2, "weights": "x" * 100_000})
    assert full.history(run_id) == [{"epoch": 1}]
    full.set_status(run_id, "cancelled")  # the failed transaction was rolled back; small writes still fit
    assert store.get_run(run_id).status == "cancelled"
