"""The SQLite run store: the single source of truth for runs, their per-epoch history and final metrics.

Each thread gets its own connection (sqlite3 connections must not cross threads, and the app has many),
in WAL mode with a busy timeout, so the app, its workers and the CLI can read and write at once.
A store whose file or folder cannot be written still opens for reading; writing to it raises `StoreError`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from .paths import data_home
from .versions import library_versions

STATUSES = ("queued", "running", "completed", "cancelled", "diverged", "failed", "interrupted")
TERMINAL_STATUSES = ("completed", "cancelled", "diverged", "failed", "interrupted")
RUN_KINDS = ("pair", "teacher")
EXPORT_FORMATS = ("json", "csv")
DB_FILENAME = "runs.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    config_json TEXT NOT NULL,
    teacher_id TEXT NOT NULL DEFAULT '',
    owner TEXT NOT NULL DEFAULT '',
    pid INTEGER,
    process_token TEXT,
    metrics_json TEXT NOT NULL DEFAULT '{}',
    timing_json TEXT NOT NULL DEFAULT '{}',
    versions_json TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    label TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    epoch INTEGER,
    step INTEGER,
    event_json TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""

# Fragments of sqlite3 error messages that mean "this store cannot be written" (read-only file or folder, full
# disk, failing disk) rather than a bug in the caller.
_UNWRITABLE_HINTS = (
    "readonly database",
    "disk is full",
    "unable to open database",
    "disk i/o error",
    "access permission denied",
)

# Pids repeat: a container's server is often pid 1 on every start. Each process incarnation therefore also
# writes a random token, so a new process never mistakes the runs of its dead predecessor for its own.
_PROCESS_TOKENS: dict[int, str] = {}


class StoreError(RuntimeError):
    """The run store cannot be written (read-only location or full disk)."""


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table, with its JSON columns parsed."""

    run_id: str
    kind: str
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    config: dict[str, Any]
    teacher_id: str
    owner: str
    pid: int | None
    metrics: dict[str, Any]
    timing: dict[str, Any]
    versions: dict[str, Any]
    error: str | None
    label: str

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish; for a run still going, seconds so far; None if it never started."""
        if self.started_at is None:
            return None
        end = datetime.fromisoformat(self.finished_at) if self.finished_at else datetime.now(timezone.utc)
        return (end - datetime.fromisoformat(self.started_at)).total_seconds()

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> RunRecord:
        """Build a record from a `SELECT * FROM runs` row."""
        return cls(
            run_id=row["run_id"],
            kind=row["kind"],
            status=row["status"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            config=json.loads(row["config_json"]),
            teacher_id=row["teacher_id"],
            owner=row["owner"],
            pid=row["pid"],
            metrics=json.loads(row["metrics_json"]),
            timing=json.loads(row["timing_json"]),
            versions=json.loads(row["versions_json"]),
            error=row["error"],
            label=row["label"],
        )


class RunStore:
    """Runs and their event history in one SQLite file; safe to share between threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """Open (creating if needed) the store at `path`, default `data_home(data_dir) / "runs.sqlite3"`."""
        self.path = Path(path) if path is not None else data_home(data_dir) / DB_FILENAME
        # One connection per thread: sqlite3 connections must stay in their thread, and closing the last
        # connection checkpoints the WAL (tens of ms), which a connection per operation would pay every time.
        self._local = threading.local()
        # For a store we cannot write: the read-only URI every connection uses instead of the plain path.
        self._read_uri: str | None = None
        try:
            self._create_schema()
        except StoreError as error:
            if not self.path.is_file():
                raise
            # An existing store we cannot write stays usable for reading (history pages, exports).
            self._read_uri = self._read_only_uri(error)
        self._check_schema_version()

    # ----------------------------------------------------------------------------------------- writing runs

    def create_run(
        self,
        config: dict[str, Any],
        *,
        kind: str = "pair",
        teacher_id: str = "",
        owner: str = "",
        status: str = "queued",
        label: str = "",
    ) -> str:
        """Record a new run and return its id; `status` is 'queued' (for a worker) or 'running' (inline)."""
        if not isinstance(config, dict):
            raise ValueError(f"config must be a dict of settings, got {type(config).__name__}")
        _check_choice("kind", kind, RUN_KINDS)
        _check_choice("status", status, ("queued", "running"))
        run_id = uuid.uuid4().hex[:12]
        now = _now()
        with self._writing() as connection:
            connection.execute(
                "INSERT INTO runs (run_id, kind, status, created_at, started_at, config_json, teacher_id,"
                " owner, pid, process_token, versions_json, label)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    kind,
                    status,
                    now,
                    now if status == "running" else None,
                    _to_json(config, "config"),
                    teacher_id,
                    owner,
                    os.getpid(),
                    _process_token(),
                    json.dumps(library_versions()),
                    label,
                ),
            )
        return run_id

    def mark_running(self, run_id: str) -> None:
        """Record that this process has started the run now."""
        self._update(
            run_id,
            "status = 'running', started_at = ?, pid = ?, process_token = ?",
            (_now(), os.getpid(), _process_token()),
        )

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        """Change a run's status (a terminal one also stamps finished_at) and, if given, its error message."""
        _check_choice("status", status, STATUSES)
        finished_at = _now() if status in TERMINAL_STATUSES else None
        self._update(
            run_id,
            "status = ?, finished_at = COALESCE(finished_at, ?), error = COALESCE(?, error)",
            (status, finished_at, error),
        )

    def finish_run(
        self,
        run_id: str,
        status: str,
        metrics: dict[str, Any],
        timing: dict[str, Any],
        error: str | None = None,
    ) -> None:
        """Record a run's end: its terminal status, final metrics and timing."""
        _check_choice("status", status, TERMINAL_STATUSES)
        self._update(
            run_id,
            "status = ?, finished_at = ?, metrics_json = ?, timing_json = ?, error = ?",
            (status, _now(), _to_json(metrics, "metrics"), _to_json(timing, "timing"), error),
        )

    def append_event(self, run_id: str, event: dict[str, Any]) -> int:
        """Append one history event (a dict; 'epoch' and 'step' are indexed) and return its seq number."""
        event_json = _to_json(event, "event")
        try:
            with self._writing() as connection:
                # One statement inside an IMMEDIATE transaction: the next seq is read and written under the
                # write lock, so concurrent writers (threads or processes) never collide.
                cursor = connection.execute(
                    "INSERT INTO events (run_id, seq, epoch, step, event_json)"
                    " SELECT ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ? FROM events WHERE run_id = ?",
                    (run_id, event.get("epoch"), event.get("step"), event_json, run_id),
                )
                (seq,) = connection.execute("SELECT seq FROM events WHERE rowid = ?", (cursor.lastrowid,)).fetchone()
        except sqlite3.IntegrityError as error:
            raise ValueError(_not_found(run_id)) from error
        return seq

    def delete_run(self, run_id: str) -> bool:
        """Delete a run and its history; False if there was no such run."""
        with self._writing() as connection:
            return connection.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount > 0

    def recover_interrupted(self) -> list[str]:
        """Mark 'interrupted' every queued or running run whose process has died; return their ids.

        Their history is kept. Nothing is written when nothing needs recovering, so this is safe on a
        read-only store.
        """
        candidates = self._rows(
            "SELECT run_id, status, pid, process_token FROM runs WHERE status IN ('queued', 'running')"
        )
        orphans = [row for row in candidates if not _process_alive(row["pid"], row["process_token"])]
        if not orphans:
            return []
        now = _now()
        with self._writing() as connection:
            for row in orphans:
                # Guarded by the old status and pid, so a run that moved on since the read is left alone.
                connection.execute(
                    "UPDATE runs SET status = 'interrupted', finished_at = ?, error = ?"
                    " WHERE run_id = ? AND status = ? AND pid IS ?",
                    (
                        now,
                        _interruption_message(row["status"], row["pid"]),
                        row["run_id"],
                        row["status"],
                        row["pid"],
                    ),
                )
        return [row["run_id"] for row in orphans]

    # ----------------------------------------------------------------------------------------- reading runs

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None if there is no such run."""
        rows = self._rows("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        return RunRecord.from_row(rows[0]) if rows else None

    def history(self, run_id: str) -> list[dict[str, Any]]:
        """The run's events in the order they were appended (empty for an unknown run)."""
        rows = self._rows("SELECT event_json FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
        return [json.loads(row["event_json"]) for row in rows]

    def list_runs(
        self,
        limit: int | None = None,
        owner: str | None = None,
        statuses: tuple[str, ...] | list[str] | None = None,
    ) -> list[RunRecord]:
        """Runs newest first; optionally only `owner`'s, only those in `statuses`, at most `limit` of them."""
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
        clauses, parameters = [], []
        if owner is not None:
            clauses.append("owner = ?")
            parameters.append(owner)
        if statuses is not None:
            for status in statuses:
                _check_choice("statuses", status, STATUSES)
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            parameters.extend(statuses)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT * FROM runs {where} ORDER BY created_at DESC, rowid DESC LIMIT ?"
        rows = self._rows(query, (*parameters, -1 if limit is None else limit))
        return [RunRecord.from_row(row) for row in rows]

    def queued_run_ids(self) -> list[str]:
        """Ids of queued runs, oldest first (the order they would start in)."""
        rows = self._rows("SELECT run_id FROM runs WHERE status = 'queued' ORDER BY created_at, rowid")
        return [row["run_id"] for row in rows]

    def export_run(self, run_id: str, fmt: str) -> str:
        """The run as text: 'json' (record fields plus "history") or 'csv' (one row per history event)."""
        _check_choice("fmt", fmt, EXPORT_FORMATS)
        record = self.get_run(run_id)
        if record is None:
            raise ValueError(_not_found(run_id))
        history = self.history(run_id)
        if fmt == "json":
            document = {**asdict(record), "duration_seconds": record.duration_seconds, "history": history}
            # Diverged runs hold NaN losses; strict JSON has no NaN, so they become null for other tools.
            return json.dumps(_finite_or_none(document), indent=2, allow_nan=False)
        return _history_csv(record, history)

    # ----------------------------------------------------------------------------------------- connections

    def _create_schema(self) -> None:
        """Create the tables (idempotent) and switch the file to WAL mode, which persists in the file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise self._unwritable(error) from error
        try:
            with closing(self._connect()) as connection:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(_SCHEMA)
                if connection.execute("PRAGMA user_version").fetchone()[0] == 0:
                    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.OperationalError as error:
            if _is_unwritable(error):
                raise self._unwritable(error) from error
            raise

    def _check_schema_version(self) -> None:
        """Refuse a store written by a newer Distill Explorer, whose schema this code does not know."""
        version = self._rows("PRAGMA user_version")[0][0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the run store at {self.path} has schema version {version}, newer than this Distill"
                f" Explorer understands ({SCHEMA_VERSION}); upgrade Distill Explorer or set DISTILL_HOME"
                " to another folder"
            )

    def _connect(self, uri: str | None = None) -> sqlite3.Connection:
        """A fresh connection: IMMEDIATE transactions, busy timeout, foreign keys on, rows by column name."""
        connection = sqlite3.connect(
            uri or self.path,
            uri=uri is not None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level="IMMEDIATE",
        )
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA foreign_keys = ON")
        # NORMAL is the recommended level under WAL: a power cut may lose the last commits, never the file.
        connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (and again in a forked child)."""
        cached = getattr(self._local, "cached", None)
        if cached is None or cached[0] != os.getpid():
            cached = (os.getpid(), self._connect(self._read_uri))
            self._local.cached = cached
        return cached[1]

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection; the block's statements commit together at its end or roll back."""
        connection = self._connection()
        try:
            with connection:
                yield connection
        except sqlite3.OperationalError as error:
            if connection.in_transaction:
                connection.rollback()  # a failed COMMIT (full disk) leaves the transaction open
            if _is_unwritable(error):
                raise self._unwritable(error) from error
            raise

    def _rows(self, query: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """The rows of one read query on this thread's connection."""
        return self._connection().execute(query, parameters).fetchall()

    def _read_only_uri(self, cause: StoreError) -> str:
        """The first read-only URI that opens the store.

        mode=ro sees other writers' changes but still needs the WAL index beside the file; in a read-only
        folder that cannot be created, and only immutable=1 (no locking, no WAL index) can read the file.
        """
        base = self.path.resolve().as_uri()
        for uri in (f"{base}?mode=ro", f"{base}?mode=ro&immutable=1"):
            try:
                with closing(self._connect(uri)) as connection:
                    connection.execute("SELECT 1 FROM sqlite_master LIMIT 1")
                return uri
            except sqlite3.OperationalError:
                continue
        raise StoreError(f"the run store at {self.path} cannot be read: {cause}") from cause

    def _update(self, run_id: str, assignments: str, parameters: tuple[Any, ...]) -> None:
        """UPDATE one run's columns; ValueError if there is no such run."""
        with self._writing() as connection:
            cursor = connection.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*parameters, run_id))
        if cursor.rowcount == 0:
            raise ValueError(_not_found(run_id))

    def _unwritable(self, reason: Exception) -> StoreError:
        return StoreError(
            f"the run store at {self.path} is not writable: {reason}; check permissions or free disk space,"
            " or set DISTILL_HOME to a writable folder"
        )


# --------------------------------------------------------------------------------------------- helpers


@lru_cache(maxsize=1)
def _process_token() -> str:
    """A random id for this process incarnation (a forked child gets its own, since its pid differs)."""
    return _PROCESS_TOKENS.setdefault(os.getpid(), uuid.uuid4().hex)


def _process_alive(pid: int | None, token: str | None) -> bool:
    """Whether the process that owns a run is still running."""
    if token == _process_token():
        return True
    if pid is None or pid == os.getpid():
        # Our pid but not our token: a previous process that happened to have the same pid.
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists but belongs to another user
    return True


def _interruption_message(status: str, pid: int | None) -> str:
    if status == "queued":
        return f"the process that queued this run (pid {pid}) exited before it started"
    return f"the process running this run (pid {pid}) exited before it finished"


def _is_unwritable(error: sqlite3.OperationalError) -> bool:
    message = str(error).lower()
    return any(hint in message for hint in _UNWRITABLE_HINTS)


def _not_found(run_id: str) -> str:
    return f"run {run_id!r} not found; see `python -m distill_core runs list`"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _to_json(value: dict[str, Any], name: str) -> str:
    """Serialise a dict for a JSON column; ValueError naming the argument if it holds non-JSON values."""
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
    try:
        return json.dumps(value)
    except TypeError as error:
        raise ValueError(
            f"{name} must hold only JSON values (numbers, strings, lists, dicts): {error};"
            " convert tensors with .item() or .tolist()"
        ) from error


def _finite_or_none(value: Any) -> Any:
    """A copy of a JSON value with NaN and infinities replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted columns ({"a": {"b": 1}} -> {"a.b": 1}); lists become JSON text."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        column = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{column}."))
        else:
            flat[column] = json.dumps(value) if isinstance(value, list) else value
    return flat


def _history_csv(record: RunRecord, history: list[dict[str, Any]]) -> str:
    """One CSV row per event: run identity and config.* columns repeated, then seq and the event's fields."""
    run_columns = {
        "run_id": record.run_id,
        "kind": record.kind,
        "status": record.status,
        "label": record.label,
        "teacher_id": record.teacher_id,
        **_flatten(record.config, "config."),
    }
    # Appends number events 1, 2, 3, ... with no gaps, so the position in the history is the stored seq.
    rows = [{**run_columns, "seq": seq, **_flatten(event)} for seq, event in enumerate(history, start=1)]
    fieldnames = list(dict.fromkeys([*run_columns, "seq", *(column for row in rows for column in row)]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
