"""The results store: one SQLite file holding architectures and every stage's results.

Contract:

* One schema for every stage: an ``architectures`` table (the 28-key record, params/MACs
  in millions, where the architecture came from) and one ``results`` table whose rows are
  :class:`StageResult` values keyed by :attr:`StageResult.key` (architecture id, stage,
  target and the canonical JSON of the settings). A result is never stored twice.
* The file identifies itself as an anbench store (``PRAGMA application_id``) and carries
  its schema version (``PRAGMA user_version``); :meth:`Store.open` refuses files that are
  not SQLite, SQLite files of other applications and stores written by a newer anbench,
  each with a one-line :class:`AnbenchError` naming the path.
* Every write runs in a transaction (``BEGIN IMMEDIATE``), so a killed process leaves the
  old state or the new one, never a mix. WAL mode and a busy timeout let several
  processes (e.g. shards of a measurement campaign) write the same file concurrently.
* JSON values (settings, metrics, provenance, origin) round-trip exactly: ints stay ints,
  floats are stored with ``repr`` precision, ``None`` stays ``None``, key order is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .errors import AnbenchError
from .measure.environment import utc_now
from .searchspace import Architecture

SCHEMA_VERSION = 1
# "ANBS" as a big-endian int: marks the SQLite file as an anbench store.
APPLICATION_ID = 0x414E4253
BUSY_TIMEOUT_MS = 30_000

STAGES = ("train", "compile", "measure")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS architectures (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    record_json TEXT NOT NULL,
    params_m    REAL NOT NULL,
    macs_m      REAL NOT NULL,
    origin_json TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    key             TEXT NOT NULL UNIQUE,
    arch_id         TEXT NOT NULL REFERENCES architectures(id),
    stage           TEXT NOT NULL,
    target          TEXT NOT NULL,
    settings_json   TEXT NOT NULL,
    metrics_json    TEXT NOT NULL,
    provenance_json TEXT NOT NULL,
    source          TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_stage_target ON results(stage, target, arch_id);
CREATE INDEX IF NOT EXISTS results_by_arch ON results(arch_id);
"""


def _dumps(value: Any) -> str:
    # json keeps dict order and writes floats with repr(): loads(dumps(x)) == x exactly.
    return json.dumps(value, separators=(",", ":"))


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON: equal values give equal text (used for result keys)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class StageResult:
    """One stored result of one stage for one architecture.

    ``target`` is the device name for ``measure``, the dataset for ``train`` and the
    compile target for ``compile``. ``settings`` are the effective settings that define
    the result (part of its key); ``metrics`` is flat with units in the names
    (``throughput_ips_mean``, ``latency_ms_std``, ``val_top1``, ``train_time_s``, ...).
    """

    arch_id: str
    stage: str
    target: str
    settings: dict
    metrics: dict
    provenance: dict
    source: str = "anbench"
    created_at: str = ""

    @property
    def key(self) -> str:
        """SHA-256 hex of (arch_id, stage, target, canonical JSON of settings)."""
        text = canonical_json([self.arch_id, self.stage, self.target, self.settings])
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class StoredArchitecture:
    arch: Architecture
    id: str
    params_m: float
    macs_m: float
    origin: dict = field(default_factory=dict)
    created_at: str = ""


class Store:
    """A results store on one SQLite file. Open with :meth:`open`; close with :meth:`close`.

    One instance may be shared by threads (a lock serialises access); several processes
    may open the same file.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.RLock()
        self._depth = 0

    # -- opening ------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Store":
        """Open the store at ``path``, creating the file and schema if missing.

        Raises :class:`AnbenchError` (one line, naming the path) when the path or its
        directory cannot be written, the file is not SQLite, the database is not an
        anbench store, or its schema is newer than this anbench understands.
        """
        path = Path(path)
        _check_location(path)
        try:
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise AnbenchError(f"cannot open store {path}: {exc}") from None
        try:
            _prepare(conn, path)
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"store {self.path} is closed")
        return self._conn

    # -- transactions -------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Store"]:
        """One atomic write: everything inside commits together or not at all.

        Nested uses join the outermost transaction. ``BEGIN IMMEDIATE`` takes the write
        lock up front, so concurrent writers wait (busy timeout) instead of failing on
        a lock upgrade half-way.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise AnbenchError(f"store {self.path} is busy or not writable: {exc}") from None
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self.conn.execute("ROLLBACK")
                raise AnbenchError(f"cannot write store {self.path}: {exc}") from None

    # -- architectures ------------------------------------------------------------

    def add_architecture(self, arch: Architecture, origin: dict | None = None) -> bool:
        """Store ``arch`` with its params/MACs (millions) and ``origin``; True if it was new.

        Idempotent: an architecture already stored keeps its first origin.
        """
        from .costs import count_costs

        with self.transaction():
            if self.conn.execute("SELECT 1 FROM architectures WHERE id = ?", (arch.id,)).fetchone():
                return False
            costs = count_costs(arch)
            self.conn.execute(
                "INSERT INTO architectures (id, record_json, params_m, macs_m, origin_json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (arch.id, _dumps(arch.to_record()), costs.params_m, costs.macs_m, _dumps(origin or {}), utc_now()),
            )
            return True

    def architecture(self, arch_id: str) -> Architecture | None:
        with self._lock:
            row = self.conn.execute("SELECT record_json FROM architectures WHERE id = ?", (arch_id,)).fetchone()
        return Architecture.from_record(json.loads(row[0])) if row else None

    def architecture_by_prefix(self, prefix: str) -> Architecture:
        """The one stored architecture whose id starts with ``prefix``; AnbenchError otherwise."""
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise AnbenchError(f"'{prefix}' is not an architecture id (ids are lowercase hex)")
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, record_json FROM architectures WHERE substr(id, 1, ?) = ? ORDER BY seq LIMIT 3",
                (len(prefix), prefix),
            ).fetchall()
        if not rows:
            raise AnbenchError(f"no stored architecture has an id starting with '{prefix}' (store {self.path})")
        if len(rows) > 1:
            shown = ", ".join(r[0] for r in rows[:2])
            raise AnbenchError(f"id prefix '{prefix}' is ambiguous ({shown}, ...); give more digits")
        return Architecture.from_record(json.loads(rows[0][1]))

    def architectures(self) -> list[StoredArchitecture]:
        """Every stored architecture, in insertion order."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT id, record_json, params_m, macs_m, origin_json, created_at FROM architectures ORDER BY seq"
            ).fetchall()
        return [
            StoredArchitecture(Architecture.from_record(json.loads(rec)), arch_id, params_m, macs_m,
                               json.loads(origin), created_at)
            for arch_id, rec, params_m, macs_m, origin, created_at in rows
        ]

    def count_architectures(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT COUNT(*) FROM architectures").fetchone()[0]

    # -- results ------------------------------------------------------------------

    def add_result(self, result: StageResult, replace: bool = False) -> bool:
        """Store ``result``; False (nothing written) if its key exists and not ``replace``.

        The architecture must be stored first. ``created_at`` is set to now when empty.
        """
        if result.stage not in STAGES:
            raise AnbenchError(f"unknown stage '{result.stage}'; stages: {', '.join(STAGES)}")
        created_at = result.created_at or utc_now()
        row = (
            result.key, result.arch_id, result.stage, result.target, _dumps(result.settings),
            _dumps(result.metrics), _dumps(result.provenance), result.source, created_at,
        )
        with self.transaction():
            if not self.conn.execute("SELECT 1 FROM architectures WHERE id = ?", (result.arch_id,)).fetchone():
                raise AnbenchError(f"architecture {result.arch_id} is not in store {self.path}; add it before its results")
            exists = self.conn.execute("SELECT 1 FROM results WHERE key = ?", (result.key,)).fetchone()
            if exists and not replace:
                return False
            if exists:
                self.conn.execute("DELETE FROM results WHERE key = ?", (result.key,))
            self.conn.execute(
                "INSERT INTO results (key, arch_id, stage, target, settings_json, metrics_json, provenance_json, "
                "source, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        if not result.created_at:
            result.created_at = created_at
        return True

    def results(self, stage: str | None = None, arch_id: str | None = None, target: str | None = None) -> list[StageResult]:
        """Stored results matching every given filter, in insertion order."""
        where, args = _filters(stage=stage, arch_id=arch_id, target=target)
        with self._lock:
            rows = self.conn.execute(
                "SELECT arch_id, stage, target, settings_json, metrics_json, provenance_json, source, created_at "
                f"FROM results {where} ORDER BY seq",
                args,
            ).fetchall()
        return [
            StageResult(a, s, t, json.loads(settings), json.loads(metrics), json.loads(prov), source, created)
            for a, s, t, settings, metrics, prov, source, created in rows
        ]

    def has_result(self, arch_id: str, stage: str, target: str, settings: dict | None = None) -> bool:
        """Whether a result exists for (arch, stage, target); ``settings`` None means any settings."""
        with self._lock:
            if settings is not None:
                key = StageResult(arch_id, stage, target, settings, {}, {}).key
                return self.conn.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone() is not None
            return self.conn.execute(
                "SELECT 1 FROM results WHERE arch_id = ? AND stage = ? AND target = ? LIMIT 1", (arch_id, stage, target)
            ).fetchone() is not None

    def missing(self, stage: str, target: str) -> list[Architecture]:
        """Stored architectures (insertion order) with no result for (stage, target)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT record_json FROM architectures a WHERE NOT EXISTS ("
                "SELECT 1 FROM results r WHERE r.arch_id = a.id AND r.stage = ? AND r.target = ?) ORDER BY seq",
                (stage, target),
            ).fetchall()
        return [Architecture.from_record(json.loads(r[0])) for r in rows]

    def count_results(self) -> int:
        with self._lock:
            return self.conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def _filters(**filters: Any) -> tuple[str, list]:
    clauses, args = [], []
    for column, value in filters.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def _check_location(path: Path) -> None:
    # sqlite3's own messages ("unable to open database file") name neither the path nor the cause.
    if path.is_dir():
        raise AnbenchError(f"store path {path} is a directory; give a file name such as {path / 'anbench.db'}")
    parent = path.parent
    if not path.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AnbenchError(f"cannot create the directory of store {path}: {exc.strerror or exc}") from None
        if not os.access(parent, os.W_OK | os.X_OK):
            raise AnbenchError(f"cannot create store {path}: directory {parent} is not writable")
        return
    if not os.access(path, os.R_OK | os.W_OK):
        raise AnbenchError(f"store {path} is not readable and writable by this user")
    # WAL mode needs the -wal and -shm files next to the database.
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AnbenchError(f"store {path}: directory {parent} is not writable (SQLite needs it for its journal)")


def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Check the file is an anbench store (or empty) and create/upgrade the schema."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise AnbenchError(f"{path} is not an anbench store: not an SQLite database ({exc})") from None
    if app_id != APPLICATION_ID:
        if app_id != 0 or tables - {"sqlite_sequence"}:
            raise AnbenchError(f"{path} is an SQLite database but not an anbench store; "
                               f"choose another --store path")
    elif version > SCHEMA_VERSION:
        raise AnbenchError(f"store {path} has schema version {version}, newer than this anbench understands "
                           f"({SCHEMA_VERSION}); upgrade anbench")
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":  # e.g. a file system without shared memory
            conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        if app_id != APPLICATION_ID or version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                # two processes may create the same new store at once: re-check under the lock
                if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
    except sqlite3.DatabaseError as exc:
        raise AnbenchError(f"cannot initialise store {path}: {exc}") from None
