"""Device runners ``zcu102`` and ``vck190``: a DPU board, here or over SSH.

Two ways to reach the board (``anbench measure --device zcu102 ...``):

* ``--host USER@BOARD[:PORT] [--identity KEY]``: copy the runner and the compiled xmodel
  over SSH, run :mod:`anbench_fpga_dpu.board_runner` with the board's own Python, fetch
  its JSON (:mod:`anbench_fpga_dpu.remote`);
* ``--on-board`` (or no option on a machine where xir and vart import): anbench runs on
  the board and the runner runs in this process.

The board times itself (:meth:`DpuDevice.measure_on_device`): latency (1 thread, 1 job in
flight, batch = the DPU's) and throughput (N threads, or ``threads=auto``), both through
the statistical engine. Device options (``--option KEY=VALUE``, or ``request.options``): ``threads``
(N or auto; default 5 on ZCU102, 6 on VCK190), ``budget_s`` (per mode, default 30),
``remote_dir`` and ``python`` (on the board).

:meth:`prepare`/:meth:`run` (the generic timing loop) work on the board only: one VART
runner, ``run(k)`` = k DPU jobs one after the other.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from anbench.errors import AnbenchError

from . import toolchain
from .boards import Board
from .remote import DEFAULT_REMOTE_DIR, RemoteSession, SshBoard

OPTION_NAMES = ("host", "identity", "on_board", "threads", "budget_s", "remote_dir", "python")
PRECISIONS = ("int8", "fp32")  # the DPU always runs int8; fp32 is `anbench measure`'s default name


@dataclass
class _Prepared:
    worker: Any  # board_runner.DpuWorker: one VART runner and its buffers


def _threads(value) -> int | str:
    if value in (None, "", 0, "0"):
        return 0
    if str(value) == "auto":
        return "auto"
    try:
        threads = int(value)
    except ValueError:
        threads = -1
    if threads < 1:
        raise AnbenchError(f"device option threads={value!r} must be a positive integer or auto")
    return threads


def _budget(value) -> float:
    try:
        budget = float(value)
    except (TypeError, ValueError):
        budget = -1.0
    if not (math.isfinite(budget) and budget > 0):
        raise AnbenchError(f"device option budget_s={value!r} must be a positive number of seconds")
    return budget


class DpuDevice:
    """Device runner for one DPU board; unconfigured it runs here (on the board)."""

    def __init__(self, board: Board, options: dict[str, Any] | None = None) -> None:
        self.board = board
        self.name = board.name
        self.summary = f"int8 inference on the DPU of a {board.description} through VART, on the board or over SSH"
        options = dict(options or {})
        self.options = options
        unknown = sorted(set(options) - set(OPTION_NAMES))
        if unknown:
            raise AnbenchError(f"device {board.name} has no option(s) {', '.join(unknown)}; "
                               f"options: {', '.join(OPTION_NAMES)}")
        if options.get("host") and options.get("on_board"):
            raise AnbenchError("give either --host USER@BOARD (measure over SSH) or --on-board, not both")
        if options.get("identity") and not options.get("host"):
            raise AnbenchError("--identity needs --host USER@BOARD")
        self.ssh = SshBoard.parse(options["host"], options.get("identity")) if options.get("host") else None
        self.threads = _threads(options.get("threads"))
        self.budget_s = _budget(options.get("budget_s", 30.0))
        self.remote_dir = str(options.get("remote_dir") or DEFAULT_REMOTE_DIR)
        self.python = str(options.get("python") or "python3")
        self._session: RemoteSession | None = None

    def with_options(self, options: dict[str, Any]) -> "DpuDevice":
        """A runner configured by ``anbench measure``'s device options (see the module doc)."""
        return DpuDevice(self.board, options)

    def availability(self) -> str | None:
        if self.ssh is not None:
            return toolchain.ssh_missing()
        reason = toolchain.runtime_missing()
        if reason:
            return f"{reason}; to measure a board from this machine give --host USER@BOARD"
        return None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "dpu",
            "board": self.board.name,
            "documented_dpu_target": self.board.documented_target,
            "arch_json": self.board.arch_json,
            "reached": "ssh" if self.ssh else "on-board",
            "host": self.ssh.destination if self.ssh else None,
        }

    # -- the board times itself ------------------------------------------------------

    def _xmodel(self, request):
        if request.artifact is None or not request.artifact.is_file():
            where = f" ({request.artifact} is missing)" if request.artifact else ""
            raise AnbenchError(f"no compiled xmodel for {request.arch.id} on {self.name}{where}: run "
                               f"`anbench compile --target {self.name} --arch {request.arch.id}` first")
        return request.artifact

    def _run_mode(self, xmodel, mode: str) -> dict:
        threads = self.threads or self.board.default_threads
        if self.ssh is not None:
            if self._session is None:
                self._session = RemoteSession(self.ssh, self.remote_dir, self.python)
            return self._session.run(xmodel, mode, threads, self.budget_s)
        from . import board_runner

        args = argparse.Namespace(xmodel=str(xmodel), mode=mode, threads=threads, budget_s=self.budget_s)
        try:
            return board_runner.run(args)
        except board_runner.RunnerError as exc:
            raise AnbenchError(f"board runner: {exc}") from None

    def measure_on_device(self, request) -> dict[str, Any]:
        """Latency and throughput of ``request.artifact`` measured on the board: flat metrics.

        Options carried by the request (``request.options``, where the core has them)
        override the configured ones. The board runs int8 inference at the DPU's own batch:
        any other mode or precision is refused, never measured under the wrong name."""
        if getattr(request, "mode", "inference") != "inference":
            raise AnbenchError(f"device {self.name} runs inference only, not --mode {request.mode}")
        precision = getattr(request, "precision", "int8")
        if precision not in PRECISIONS:
            raise AnbenchError(f"the DPU runs int8 only; precision {precision!r} is not served")
        extra = getattr(request, "options", None)
        if extra:
            return self.with_options({**self.options, **extra})._measure(request)
        return self._measure(request)

    def _measure(self, request) -> dict[str, Any]:
        xmodel = self._xmodel(request)
        latency = self._run_mode(xmodel, "latency")
        throughput = self._run_mode(xmodel, "throughput")
        return combine(latency, throughput, self.ssh.destination if self.ssh else "on-board")

    # -- generic timing loop (on the board only) --------------------------------------

    def prepare(self, request) -> _Prepared:
        if self.ssh is not None:
            raise AnbenchError(f"{self.name} over SSH is timed on the board itself (anbench measure does that); "
                               "prepare/run need --on-board")
        reason = self.availability()
        if reason:
            raise AnbenchError(f"device {self.name} is not available here: {reason}")
        if request.precision not in PRECISIONS:
            raise AnbenchError(f"the DPU runs int8 only; precision {request.precision!r} is not served")
        import numpy as np
        import vart
        import xir

        from . import board_runner

        try:
            subgraph = board_runner.dpu_subgraph(xir, str(self._xmodel(request)))
        except board_runner.RunnerError as exc:
            raise AnbenchError(str(exc)) from None
        return _Prepared(board_runner.DpuWorker(np, vart, subgraph, depth=1, seed=request.seed))

    def run(self, prepared: _Prepared, batches: int) -> None:
        from .board_runner import run_jobs

        run_jobs(prepared.worker, batches)

    def release(self, prepared: _Prepared) -> None:
        prepared.worker = None  # the VART runner is freed with its last reference


def combine(latency: dict, throughput: dict, board: str) -> dict[str, Any]:
    """One flat metrics dict from the runner's latency and throughput JSON objects."""
    reasons = [f"latency: {r}" for r in latency.get("reasons", [])]
    reasons += [f"throughput: {r}" for r in throughput.get("reasons", [])]
    valid = latency.get("verdict") == "VALID" and throughput.get("verdict") == "VALID"
    metrics = {
        "latency_ms_mean": latency.get("latency_ms_mean"),
        "latency_ms_std": latency.get("latency_ms_std"),
        "latency_ms_median": latency.get("latency_ms_median"),
        "latency_ms_ci": latency.get("latency_ms_ci"),
        "throughput_ips_mean": throughput.get("throughput_ips_mean"),
        "throughput_ips_std": throughput.get("throughput_ips_std"),
        "throughput_ips_ci": throughput.get("throughput_ips_ci"),
        "threads": throughput.get("threads"),
        "jobs_in_flight": throughput.get("jobs_in_flight"),
        "dpu_batch": latency.get("dpu_batch"),
        "dpu_target": latency.get("dpu_target"),
        "dpu_fingerprint": latency.get("dpu_fingerprint"),
        "engine": latency.get("engine"),
        "board": board,
        "verdict": "VALID" if valid else "INVALID",
        "reasons": reasons,
        "samples": {"latency_ms": latency.get("samples_ms", [])},
    }
    if "curve" in throughput:
        metrics["threads_curve"] = throughput["curve"]
    return metrics
