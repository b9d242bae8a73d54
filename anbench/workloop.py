"""The one loop every multi-architecture stage runs through (measure, compile, train, ...).

Contract of :func:`run_items`:

* Work comes as :class:`WorkItem` values; each names the result it produces by its key
  (:attr:`WorkItem.key` equals the :class:`~anbench.store.StageResult` key). An item whose
  result is stored is skipped, never computed twice.
* Before running an item the loop claims it in the store (a lease with owner, host, pid,
  heartbeat and expiry). Another live worker's claim means "skip it"; an expired claim,
  or one held by a dead process on this host, is taken over. So several processes on one
  store split the work, and a killed worker's item is picked up again. Items held by
  others are looked at again after the pass: one whose lease is still renewed is left to
  its worker; one whose lease expires meanwhile (a worker killed on another host) is
  taken over. A busy store at claim time is retried with backoff.
* While the stage function runs, a background thread renews the lease.
* A finished result is never thrown away: storing it is retried with backoff while the
  store is busy, and when the store stays unusable the result goes to a side file
  (:mod:`anbench.pending`) whose path is printed; ``anbench import --format pending``
  takes it back.
* Progress: a rich progress bar (done/total, current item, rate, ETA) and a live status
  line on a terminal; one plain line per item otherwise.
* Ctrl-C: the first one lets the current item finish and be stored, then the loop stops;
  a second one abandons the current item (its lease is released, nothing is stored).
  Either way :class:`Interrupted` is raised after the summary line; the CLI prints
  ``error: interrupted`` and exits 130.
* An :class:`~anbench.errors.AnbenchError` from the stage function (a user mistake: bad
  request, missing file) stops the loop and propagates; per-item failures that should be
  kept (diverged, out of memory, INVALID) are returned by the stage function as metrics
  with a ``verdict``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .errors import AnbenchError
from .searchspace import Architecture
from .store import StageResult, Store, result_key

LEASE_S = 120.0
# how long a finished result waits for a busy store before it goes to a side file
STORE_PATIENCE_S = 300.0


class Interrupted(AnbenchError):
    """The user pressed Ctrl-C; the store holds everything finished before."""

    exit_code = 130


@dataclass(frozen=True)
class WorkItem:
    """One result to produce: ``stage`` of ``arch`` on ``target`` with ``settings`` as run ``run``."""

    arch: Architecture
    stage: str
    target: str
    settings: dict = field(hash=False)
    run: str = ""
    origin: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        return result_key(self.arch.id, self.stage, self.target, self.settings, self.run)

    @property
    def label(self) -> str:
        return f"{self.arch.id}{' ' + self.run if self.run else ''}"


@dataclass
class StageOutput:
    """What a stage function returns for one item; stored as one result."""

    metrics: dict[str, Any]
    provenance: dict[str, Any]
    source: str = "anbench"


@dataclass
class LoopSummary:
    done: list[tuple[WorkItem, StageOutput]] = field(default_factory=list)
    skipped: list[tuple[WorkItem, str]] = field(default_factory=list)  # (item, "stored" | "held")
    already_stored: int = 0
    claimed_elsewhere: int = 0
    side_files: list[str] = field(default_factory=list)
    interrupted: bool = False
    total: int = 0

    def line(self, label: str) -> str:
        parts = [f"{len(self.done)} {label}", f"{self.already_stored} already stored"]
        if self.claimed_elsewhere:
            parts.append(f"{self.claimed_elsewhere} taken by other workers")
        if self.side_files:
            parts.append(f"{len(self.side_files)} written to side files")
        not_reached = self.total - len(self.done) - self.already_stored - self.claimed_elsewhere - len(self.side_files)
        if self.interrupted and not_reached > 0:
            parts.append(f"{not_reached} not started (interrupted)")
        return ", ".join(parts)


class ItemContext:
    """Handed to the stage function with its item: the store and a live status line."""

    def __init__(self, store: Store, item: WorkItem, display: "_Display") -> None:
        self.store = store
        self.item = item
        self._display = display

    def status(self, text: str) -> None:
        """Show ``text`` as the current item's live line (terminal only; logs stay quiet)."""
        self._display.status(f"{self.item.label}  {text}")


StageFn = Callable[[WorkItem, ItemContext], StageOutput]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def run_items(store: Store, items: Iterable[WorkItem], stage_fn: StageFn, *, label: str = "done",
              describe: Callable[[WorkItem, StageOutput], str] | None = None, progress: bool | None = None,
              lease_s: float = LEASE_S, store_patience_s: float = STORE_PATIENCE_S,
              owner: str | None = None) -> LoopSummary:
    """Run ``stage_fn`` on every item whose result is not stored (module contract).

    ``describe(item, output)`` gives the line printed for a finished item; ``progress``
    None means "a progress bar when stderr is a terminal".
    """
    items = list(items)
    owner = owner or worker_name()
    summary = LoopSummary(total=len(items))
    display = _Display(len(items), label, progress)
    stop = _StopRequest()
    held: dict[str, tuple[WorkItem, float]] = {}  # key -> (item, heartbeat seen): another worker's claim

    def run_one(item: WorkItem) -> bool:
        """Claim and run ``item``; False when the loop must stop (Ctrl-C)."""
        state = _claim(store, item, owner, lease_s, store_patience_s)
        if state == "held":
            held[item.key] = (item, _heartbeat_of(store, item.key))
            return True
        if state == "stored":
            summary.skipped.append((item, state))
            summary.already_stored += 1
            display.advance()
            return True
        ctx = ItemContext(store, item, display)
        display.status(f"{item.label}  started")
        try:
            with _Heartbeat(store, item, owner, lease_s, display):
                output = stage_fn(item, ctx)
        except KeyboardInterrupt:
            summary.interrupted = True
            _release_quietly(store, item.key, owner)
            return False
        except BaseException:
            _release_quietly(store, item.key, owner)
            raise
        side_file = _store_result(store, item, output, owner, store_patience_s)
        if side_file is _BEATEN:
            # the lease was lost (taken over as expired) and the other worker stored first
            summary.already_stored += 1
            summary.skipped.append((item, "stored"))
            display.line(f"{item.label}: another worker stored this result first; this run's result was not kept")
        elif side_file:
            summary.side_files.append(side_file)
            display.line(f"{item.label}: the store stayed unusable; result kept in {side_file} "
                         f"(anbench import --format pending {side_file})")
        else:
            summary.done.append((item, output))
            if describe is not None:
                display.line(describe(item, output))
        display.advance()
        return True

    with display, stop.installed():
        for item in items:
            if stop.requested or not run_one(item):
                summary.interrupted = True
                break
        # items another worker held: a live worker renews its lease (then it is theirs); a
        # killed one on another host stops renewing, and once its lease expires it is taken over
        while held and not summary.interrupted and not stop.requested:
            _wait_for_leases(store, held, lease_s, stop)
            for key, (item, seen) in list(held.items()):
                if stop.requested:
                    break
                lease = _lease_row(store, key)
                if lease is not None and lease["heartbeat_at"] != seen and lease["expires_at"] > time.time():
                    del held[key]  # renewed since we looked: a live worker has it
                    summary.skipped.append((item, "held"))
                    summary.claimed_elsewhere += 1
                    display.advance()
                    continue
                del held[key]
                if not run_one(item):
                    summary.interrupted = True
                    break
        for item, _ in held.values():  # interrupted while waiting
            summary.skipped.append((item, "held"))
            summary.claimed_elsewhere += 1
        if stop.requested:
            summary.interrupted = True
    return summary


def _lease_row(store: Store, key: str) -> dict[str, Any] | None:
    return next((lease for lease in store.leases() if lease["key"] == key), None)


def _heartbeat_of(store: Store, key: str) -> float | None:
    lease = _lease_row(store, key)
    return lease["heartbeat_at"] if lease else None


def _wait_for_leases(store: Store, held: dict, lease_s: float, stop: "_StopRequest") -> None:
    """Wait until the first held lease expires, or a quarter lease (a live worker renews by then)."""
    expiries = [lease["expires_at"] for lease in store.leases() if lease["key"] in held]
    wait_s = min([lease_s / 4] + [e - time.time() + 0.01 for e in expiries])
    deadline = time.monotonic() + max(0.0, wait_s)
    while not stop.requested and time.monotonic() < deadline:
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))  # waiting on another worker's lease


def next_run(store: Store, arch_id: str, stage: str, target: str, settings: dict) -> str:
    """The first run identity with no stored result: ``""``, then ``"repeat-2"``, ``"repeat-3"``, ..."""
    run, number = "", 1
    while store.has_key(result_key(arch_id, stage, target, settings, run)):
        number += 1
        run = f"repeat-{number}"
    return run


def raise_if_interrupted(summary: LoopSummary) -> None:
    if summary.interrupted:
        raise Interrupted("interrupted")


def _claim(store: Store, item: WorkItem, owner: str, lease_s: float, patience_s: float = STORE_PATIENCE_S) -> str:
    """Store.claim, retried with backoff while the store is busy (as storing a result is)."""
    deadline = time.monotonic() + patience_s
    delay = 0.05
    while True:
        try:
            if store.has_key(item.key):
                return "stored"
            return store.claim(item.key, item.arch.id, item.stage, item.target, owner, lease_s)
        except (AnbenchError, sqlite3.Error):
            if time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)  # backoff between retries of a locked store, not synchronisation
        delay = min(delay * 2, 5.0)


def _release_quietly(store: Store, key: str, owner: str) -> None:
    with contextlib.suppress(AnbenchError):
        store.release(key, owner)


# _store_result's answer when another worker had stored the item's result first
_BEATEN = "\0beaten"


def _store_result(store: Store, item: WorkItem, output: StageOutput, owner: str, patience_s: float) -> str | None:
    """Store the item's result, retrying a busy store: None once stored, :data:`_BEATEN` when
    a result with its key was already stored, the side file's path if the store never worked."""
    from .pending import write_pending

    result = StageResult(item.arch.id, item.stage, item.target, item.settings, output.metrics, output.provenance,
                         source=output.source, run=item.run)
    deadline = time.monotonic() + patience_s
    delay = 0.05
    last_error = ""
    while True:
        try:
            # the architecture joins the store with its first result: a refused run adds nothing
            with store.transaction():
                store.add_architecture(item.arch, origin=item.origin or {"source": item.stage})
                added = store.add_result(result)
            return None if added else _BEATEN
        except (AnbenchError, sqlite3.Error) as exc:
            last_error = str(exc)
        if time.monotonic() + delay > deadline:
            break
        time.sleep(delay)  # backoff between retries of a locked store, not synchronisation
        delay = min(delay * 2, 5.0)
    return str(write_pending(store.path, item.arch, item.origin, result, last_error))


class _Heartbeat:
    """Renews a lease from a background thread while the stage function works."""

    def __init__(self, store: Store, item: WorkItem, owner: str, lease_s: float, display: "_Display") -> None:
        self._store, self._item, self._owner, self._lease_s = store, item, owner, lease_s
        self._display = display
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="anbench-lease", daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self._lease_s / 4):
            with contextlib.suppress(AnbenchError, RuntimeError, sqlite3.Error):
                if not self._store.renew(self._item.key, self._owner, self._lease_s) and not self.lost:
                    self.lost = True
                    self._display.line(f"warning: {self._item.label}: lease lost to another worker (this one was "
                                       "presumed dead); its result is kept only if stored first")


class _StopRequest:
    """First Ctrl-C: finish the current item, then stop. Second: KeyboardInterrupt now."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("interrupt: finishing the current item, then stopping (Ctrl-C again to stop now)", file=sys.stderr)

    @contextlib.contextmanager
    def installed(self):
        # not from a thread (signal.signal would raise), and not where SIGINT is ignored: a
        # job started with & by a script or under nohup is meant to run on through Ctrl-C
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            yield self
            return
        self._previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, self._previous)


class _Display:
    """A rich progress bar on a terminal; plain lines otherwise."""

    def __init__(self, total: int, label: str, progress: bool | None) -> None:
        self.total = total
        self.label = label
        self.enabled = sys.stderr.isatty() if progress is None else progress
        self._progress = None
        self._task = None

    def __enter__(self) -> "_Display":
        if self.enabled and self.total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      TextColumn("{task.fields[status]}"), console=Console(stderr=True),
                                      transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, status="")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.update(self._task, status="")
            self._progress.stop()

    def status(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, status=text[:80])

    def line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            import click

            click.echo(text)

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
