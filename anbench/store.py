"""The results store: one SQLite file holding architectures and every stage's results.

Contract:

* One schema for every stage: an ``architectures`` table (the 28-key record, params/MACs
  in millions, where the architecture came from) and one ``results`` table whose rows are
  :class:`StageResult` values keyed by :attr:`StageResult.key` (architecture id, stage,
  target, the canonical JSON of the settings and the run identity). A result is never
  stored twice; repeated runs of one architecture with the same settings (other seeds,
  re-measurements, imported duplicates) differ in ``run`` and are all kept.
* A ``leases`` table lets several workers share one store: a worker claims a result key
  before computing it (:meth:`Store.claim`), renews the claim while it works, and releases
  it when the result is stored. An expired claim, or one whose holder is a dead process on
  this host, can be taken over.
* The file identifies itself as an anbench store (``PRAGMA application_id``) and carries
  its schema version (``PRAGMA user_version``); :meth:`Store.open` refuses files that are
  not SQLite, SQLite files of other applications, damaged stores and stores written by a
  newer anbench, each with a one-line :class:`AnbenchError` naming the path, and leaves
  them untouched. Older stores are migrated forward in one transaction.
* Every write runs in a transaction (``BEGIN IMMEDIATE``), so a killed process leaves the
  old state or the new one, never a mix. WAL mode and a busy timeout let several
  processes write the same file concurrently.
* JSON values (settings, metrics, provenance, origin) round-trip exactly: ints stay ints,
  floats are stored with ``repr`` precision, ``None`` stays ``None``, key order is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .errors import AnbenchError
from .measure.environment import utc_now
from .searchspace import Architecture

SCHEMA_VERSION = 2
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
    created_at      TEXT NOT NULL,
    run             TEXT NOT NULL DEFAULT ''
);
"""
# The secondary indexes of ``results``, by name; a bulk insert drops and rebuilds them.
_RESULT_INDEXES = {
    "results_by_stage_target": "results(stage, target, arch_id)",
    "results_by_arch": "results(arch_id)",
}
_SCHEMA += "".join(f"CREATE INDEX IF NOT EXISTS {name} ON {on};\n" for name, on in _RESULT_INDEXES.items())
# Adding at least this many results, and more than the store holds, rebuilds the secondary
# indexes after the insert instead of updating them row by row (a sort instead of random
# B-tree inserts: about a sixth of a large import's time).
_BULK_ROWS = 10_000

_LEASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    key          TEXT PRIMARY KEY,
    arch_id      TEXT NOT NULL,
    stage        TEXT NOT NULL,
    target       TEXT NOT NULL,
    owner        TEXT NOT NULL,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    acquired_at  TEXT NOT NULL,
    heartbeat_at REAL NOT NULL,
    expires_at   REAL NOT NULL
)
"""

# Schema version N -> N+1, each run inside the caller's transaction.
_MIGRATIONS = {
    1: ("ALTER TABLE results ADD COLUMN run TEXT NOT NULL DEFAULT ''", _LEASES_SCHEMA),
}
_TABLES = {"architectures", "results", "leases"}


# Encoders built once: json.dumps with arguments builds a new encoder per call, which
# costs a large import (tens of thousands of values) about as much as the encoding.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_quote = json.encoder.encode_basestring_ascii  # what both encoders write for a str
_sha256 = hashlib.sha256
_UNSET = object()


def _c_compact_encoder():
    """json's C encoder with _COMPACT's settings, called directly (JSONEncoder.encode builds a
    new one per call: a third of an import's encoding time); None where it is missing or its
    signature differs from the one this was written for (then _COMPACT is used)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    markers: dict = {}
    try:
        encode = make(markers, _COMPACT.default, _quote, None, ":", ",", False, False, True)
        probe = {"a": [1, 2.5, None, True, "\u00e9"], "b": {"c": -0.0}}
        if "".join(encode(probe, 0)) != _COMPACT.encode(probe):
            return None
    except Exception:  # another Python's signature
        return None

    def dumps(value: Any) -> str:
        try:
            return "".join(encode(value, 0))
        except BaseException:
            markers.clear()  # an aborted encode leaves its objects marked as "being encoded"
            raise

    return dumps


def _py_compact(value: Any) -> str:
    return _COMPACT.encode(value)


# json keeps dict order and writes floats with repr(): loads(_dumps(x)) == x exactly.
_dumps = _c_compact_encoder() or _py_compact


def canonical_json(value: Any) -> str:
    """Key-sorted compact JSON: equal values give equal text (used for result keys)."""
    return _CANONICAL.encode(value)


@dataclass
class StageResult:
    """One stored result of one stage for one architecture.

    ``target`` is the device name for ``measure``, the dataset for ``train`` and the
    compile target for ``compile``. ``settings`` are the effective settings that define
    the result (part of its key); ``metrics`` is flat with units in the names
    (``throughput_ips_mean``, ``latency_ms_std``, ``val_top1``, ``train_time_s``, ...).
    ``run`` tells repeated runs with equal settings apart (``""`` for a first or only run,
    ``"seed=3"``, ``"result_443.json"`` for an imported record, ...); it is part of the key.
    """

    arch_id: str
    stage: str
    target: str
    settings: dict
    metrics: dict
    provenance: dict
    source: str = "anbench"
    created_at: str = ""
    run: str = ""

    @property
    def key(self) -> str:
        return result_key(self.arch_id, self.stage, self.target, self.settings, self.run)


def result_key(arch_id: str, stage: str, target: str, settings: dict, run: str = "") -> str:
    """SHA-256 hex of (arch_id, stage, target, canonical settings[, run]).

    The run identity joins the hashed text only when set, so first runs keep the keys
    that schema version 1 gave them.
    """
    return _key_of_text(arch_id, stage, target, canonical_json(settings), run)


def _key_of_text(arch_id: str, stage: str, target: str, settings_text: str, run: str) -> str:
    """:func:`result_key` from the canonical text of the settings (callers storing many results
    with one settings object encode it once). The same text as canonical_json of the list."""
    if type(arch_id) is str and type(stage) is str and type(target) is str and type(run) is str:
        head = f"[{_quote(arch_id)},{_quote(stage)},{_quote(target)},{settings_text}"
        text = f"{head},{_quote(run)}]" if run else f"{head}]"
        return _sha256(text.encode()).hexdigest()
    parts: list[Any] = [arch_id, stage, target, json.loads(settings_text)] + ([run] if run else [])
    return _sha256(canonical_json(parts).encode()).hexdigest()


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
    def open(cls, path: str | os.PathLike, busy_timeout_ms: int = BUSY_TIMEOUT_MS, probe: bool = True) -> "Store":
        """Open the store at ``path``, creating the file and schema if missing.

        Raises :class:`AnbenchError` (one line, naming the path) when the path or its
        directory cannot be written, the file is not SQLite, the database is not an
        anbench store, or its schema is newer than this anbench understands.
        ``probe=False`` skips the read of every table's first page that refuses a damaged
        store (for ``store check``, which must open one to say what is wrong).
        """
        path = Path(path)
        _check_location(path)
        try:
            conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise AnbenchError(f"cannot open store {path}: {exc}") from None
        try:
            _prepare(conn, path, busy_timeout_ms, probe)
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
            except BaseException as exc:
                self._depth = 0
                _rollback(self.conn)
                if isinstance(exc, sqlite3.Error):
                    raise AnbenchError(f"cannot write store {self.path}: {exc}") from None
                raise
            self._depth = 0
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(self.conn)
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
            _dumps(result.metrics), _dumps(result.provenance), result.source, created_at, result.run,
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
                "source, created_at, run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            # the result is in: nobody needs to hold its key any more
            self.conn.execute("DELETE FROM leases WHERE key = ?", (result.key,))
        if not result.created_at:
            result.created_at = created_at
        return True

    def results(self, stage: str | None = None, arch_id: str | None = None, target: str | None = None,
                limit: int | None = None, source: str | None = None, run: str | None = None) -> list[StageResult]:
        """Stored results matching every given filter, in insertion order (the first ``limit``)."""
        where, args = _filters(stage=stage, arch_id=arch_id, target=target, source=source, run=run)
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        with self._lock:
            rows = self.conn.execute(
                "SELECT arch_id, stage, target, settings_json, metrics_json, provenance_json, source, created_at, run "
                f"FROM results {where} ORDER BY seq{tail}",
                args,
            ).fetchall()
        return [
            StageResult(a, s, t, json.loads(settings), json.loads(metrics), json.loads(prov), source, created, run)
            for a, s, t, settings, metrics, prov, source, created, run in rows
        ]

    def add_architectures(self, items: list[tuple[Architecture, dict, float, float]]) -> int:
        """Store many ``(arch, origin, params_m, macs_m)`` at once (costs counted by the caller);
        the number that were new. Like :meth:`add_architecture`, a stored one keeps its origin."""
        now = utc_now()
        with self.transaction():
            cursor = self.conn.executemany(
                "INSERT OR IGNORE INTO architectures (id, record_json, params_m, macs_m, origin_json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(arch.id, arch.canonical_json(), params_m, macs_m, _dumps(origin or {}), now)
                 for arch, origin, params_m, macs_m in items],
            )
            return max(cursor.rowcount, 0)

    def add_results(self, results: list[StageResult]) -> int:
        """Store many results in one statement batch; the number that were new (stored keys are
        left as they are). Their architectures must be stored (foreign key)."""
        now = utc_now()
        for result in results:
            if result.stage not in STAGES:
                raise AnbenchError(f"unknown stage '{result.stage}'; stages: {', '.join(STAGES)}")
            result.created_at = result.created_at or now
        rows = []
        # neighbouring results often share their settings/provenance objects (an import: one
        # settings object, one provenance per record): a shared object is encoded once
        settings = provenance = _UNSET
        for r in results:
            if r.settings is not settings:
                settings = r.settings
                settings_canonical, settings_text = canonical_json(settings), _dumps(settings)
            if r.provenance is not provenance:
                provenance = r.provenance
                provenance_text = _dumps(provenance)
            rows.append((_key_of_text(r.arch_id, r.stage, r.target, settings_canonical, r.run), r.arch_id, r.stage,
                         r.target, settings_text, _dumps(r.metrics), provenance_text, r.source, r.created_at, r.run))
        with self.transaction():
            # inside the transaction: a failed or killed insert rolls the dropped indexes back too
            bulk = len(rows) >= _BULK_ROWS and len(rows) > self.count_results()
            for name in _RESULT_INDEXES if bulk else ():
                self.conn.execute(f"DROP INDEX IF EXISTS {name}")
            try:
                cursor = self.conn.executemany(
                    "INSERT OR IGNORE INTO results (key, arch_id, stage, target, settings_json, metrics_json, "
                    "provenance_json, source, created_at, run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            except sqlite3.IntegrityError as exc:
                raise AnbenchError(f"cannot add results to store {self.path}: {exc} (store the architectures first)") from None
            for name, on in _RESULT_INDEXES.items() if bulk else ():
                self.conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {on}")
            added = max(cursor.rowcount, 0)
            if self.conn.execute("SELECT 1 FROM leases LIMIT 1").fetchone():
                self.conn.executemany("DELETE FROM leases WHERE key = ?", [(row[0],) for row in rows])
        return added

    def stored_runs(self, source: str, runs: set[tuple[str, str]]) -> dict[tuple[str, str], dict[str, dict]]:
        """``{(arch_id, run): {key: metrics}}`` of the stored results of ``source`` whose
        ``(arch_id, run)`` is in ``runs`` (runs with no stored result are left out)."""
        out: dict[tuple[str, str], dict[str, dict]] = {}
        with self._lock:
            for arch_id, run, key, metrics in self.conn.execute(
                    "SELECT arch_id, run, key, metrics_json FROM results WHERE source = ?", (source,)):
                if (arch_id, run) in runs:
                    out.setdefault((arch_id, run), {})[key] = json.loads(metrics)
        return out

    def run_counts(self) -> dict[str, int]:
        """``architectures`` with results, ``runs`` (per architecture, the most results of one
        stage and target, summed) and ``repeated`` (architectures with more than one run)."""
        with self._lock:
            archs, runs, repeated = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(m), 0), COALESCE(SUM(m > 1), 0) FROM (SELECT arch_id, MAX(c) AS m FROM "
                "(SELECT arch_id, COUNT(*) AS c FROM results GROUP BY arch_id, stage, target) GROUP BY arch_id)"
            ).fetchone()
        return {"architectures": archs, "runs": runs, "repeated": repeated}

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the stored architecture ids and result keys with their times:
        equal store contents give equal fingerprints, any added or replaced result changes it."""
        digest = hashlib.sha256()
        with self._lock:
            for (arch_id,) in self.conn.execute("SELECT id FROM architectures ORDER BY id"):
                digest.update(arch_id.encode() + b"\n")
            for key, created_at in self.conn.execute("SELECT key, created_at FROM results ORDER BY key"):
                digest.update(f"{key} {created_at}\n".encode())
        return digest.hexdigest()

    def result_summary(self) -> list[dict[str, Any]]:
        """Per (stage, target): results, distinct architectures, repeated runs, newest time."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT stage, target, COUNT(*), COUNT(DISTINCT arch_id), MAX(created_at) FROM results "
                "GROUP BY stage, target ORDER BY stage, target"
            ).fetchall()
        return [{"stage": st, "target": t, "results": n, "architectures": a, "repeats": n - a, "newest": newest}
                for st, t, n, a, newest in rows]

    def has_key(self, key: str) -> bool:
        with self._lock:
            return self.conn.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone() is not None

    def has_result(self, arch_id: str, stage: str, target: str, settings: dict | None = None) -> bool:
        """Whether a result exists for (arch, stage, target); ``settings`` None means any settings."""
        with self._lock:
            if settings is not None:
                key = result_key(arch_id, stage, target, settings)
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

    # -- leases (workers sharing the store) -------------------------------------------

    def claim(self, key: str, arch_id: str, stage: str, target: str, owner: str, lease_s: float) -> str:
        """Try to take the work of result ``key`` for ``owner`` for ``lease_s`` seconds.

        Returns ``"claimed"`` (yours now: free, expired, held by a dead process on this
        host, or already yours), ``"stored"`` (the result exists: nothing to do) or
        ``"held"`` (another live worker has it).
        """
        now = time.time()
        with self.transaction():
            if self.conn.execute("SELECT 1 FROM results WHERE key = ?", (key,)).fetchone():
                return "stored"
            row = self.conn.execute("SELECT owner, host, pid, expires_at FROM leases WHERE key = ?", (key,)).fetchone()
            if row is not None:
                holder, holder_host, holder_pid, expires_at = row
                if holder != owner and expires_at > now and not _dead_here(holder_host, holder_pid):
                    return "held"
                self.conn.execute("DELETE FROM leases WHERE key = ?", (key,))
            self.conn.execute(
                "INSERT INTO leases (key, arch_id, stage, target, owner, host, pid, acquired_at, heartbeat_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, arch_id, stage, target, owner, socket.gethostname(), os.getpid(), utc_now(), now, now + lease_s),
            )
            return "claimed"

    def renew(self, key: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease on ``key``; False when the lease was lost (taken over)."""
        now = time.time()
        with self.transaction():
            cursor = self.conn.execute("UPDATE leases SET heartbeat_at = ?, expires_at = ? WHERE key = ? AND owner = ?",
                                       (now, now + lease_s, key, owner))
            return cursor.rowcount == 1

    def release(self, key: str, owner: str) -> None:
        """Drop ``owner``'s lease on ``key`` (no-op when it holds none)."""
        with self.transaction():
            self.conn.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))

    def leases(self) -> list[dict[str, Any]]:
        """Every lease row (live or expired), oldest first."""
        with self._lock:
            cursor = self.conn.execute("SELECT key, arch_id, stage, target, owner, host, pid, acquired_at, heartbeat_at, "
                                       "expires_at FROM leases ORDER BY acquired_at")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    # -- health -------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Problems found, one line each (empty when healthy): SQLite's integrity check,
        the schema version, results without their architecture, stale leases."""
        problems = []
        with self._lock:
            try:
                lines = [r[0] for r in self.conn.execute("PRAGMA integrity_check").fetchall()]
                if lines != ["ok"]:
                    problems += [f"integrity: {line}" for line in lines[:20]]
                version = self.conn.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    problems.append(f"schema version {version}, expected {SCHEMA_VERSION}")
                orphans = self.conn.execute("SELECT COUNT(*) FROM results r WHERE NOT EXISTS "
                                            "(SELECT 1 FROM architectures a WHERE a.id = r.arch_id)").fetchone()[0]
                if orphans:
                    problems.append(f"{orphans} results belong to no stored architecture")
                now = time.time()
                for lease in self.leases():
                    where = f"{lease['stage']}/{lease['target']} {lease['arch_id']}"
                    if lease["expires_at"] < now:
                        problems.append(f"expired lease on {where} by {lease['owner']} (pid {lease['pid']} on "
                                        f"{lease['host']}); the next worker takes it over")
                    elif _dead_here(lease["host"], lease["pid"]):
                        problems.append(f"lease on {where} held by dead pid {lease['pid']}; the next worker takes it over")
            except sqlite3.DatabaseError as exc:
                problems.append(f"database error: {exc}")
        return problems

    def backup(self, out: str | os.PathLike) -> Path:
        """Copy the live store to ``out`` with SQLite's online backup (consistent while others write).

        Refuses an existing ``out``; writes a temp file beside it and renames it in place.
        """
        out = Path(out)
        if out.exists():
            raise AnbenchError(f"backup target {out} exists; choose a new file name")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
            os.close(fd)
        except OSError as exc:
            raise AnbenchError(f"cannot write backup {out}: {exc.strerror or exc}") from None
        try:
            target = sqlite3.connect(tmp)
            try:
                with self._lock:
                    self.conn.backup(target)
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
            os.replace(tmp, out)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise AnbenchError(f"cannot write backup {out}: {exc}") from None
            raise
        return out


def _dead_here(host: str, pid: int) -> bool:
    """Whether ``pid`` on ``host`` is known dead (provable only for this host)."""
    if host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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
    if path.exists() and not path.is_file():
        # /dev/null reads as an empty database and a FIFO blocks; both would get journals beside them
        raise AnbenchError(f"store path {path} is not a regular file; give a file name such as anbench.db")
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


def _rollback(conn: sqlite3.Connection) -> None:
    # SQLite rolls back by itself after some failures (a failed COMMIT, a full disk):
    # a ROLLBACK then would raise "no transaction is active" and hide the real error.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _unusable(path: Path, why: str) -> AnbenchError:
    return AnbenchError(f"{path} is not a usable anbench store: {why}")


def _prepare(conn: sqlite3.Connection, path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS, probe: bool = True) -> None:
    """Check the file is an anbench store (or empty); create the schema or migrate it forward.

    Nothing is written to a file that is refused.
    """
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, f"not an SQLite database ({exc})") from None
    if app_id != APPLICATION_ID:
        if app_id != 0 or tables - {"sqlite_sequence"}:
            raise _unusable(path, "an SQLite database of another application; choose another --store path")
    elif version > SCHEMA_VERSION:
        raise AnbenchError(f"store {path} has schema version {version}, newer than this anbench understands "
                           f"({SCHEMA_VERSION}); upgrade anbench")
    elif version < 1:
        # marked as ours but with no version we ever wrote: migrating it would guess
        raise _unusable(path, f"unknown schema version {version}")
    else:
        needed = {"architectures", "results"} | ({"leases"} if version >= 2 else set())
        if needed - tables:
            raise _unusable(path, f"it is marked as one but has no {', '.join(sorted(needed - tables))} table")
        try:
            # a cheap read of every table's first page catches most damage before any write
            for table in sorted(needed) if probe else ():
                conn.execute(f"SELECT * FROM {table} LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise _unusable(path, f"damaged ({exc}); `anbench store check` says more") from None
    try:
        if app_id == APPLICATION_ID and version == SCHEMA_VERSION:
            _connection_settings(conn)
            return
        _connection_settings(conn)
        conn.execute("BEGIN IMMEDIATE")
        try:
            # two processes may create or migrate the same store at once: re-check under the lock
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app_id != APPLICATION_ID:
                for statement in filter(str.strip, (_SCHEMA + ";" + _LEASES_SCHEMA).split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            else:
                for step in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step]:
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    except sqlite3.DatabaseError as exc:
        raise AnbenchError(f"cannot initialise store {path}: {exc}") from None


def _connection_settings(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":  # e.g. a file system without shared memory
        conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
