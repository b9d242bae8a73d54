"""Run a compiled DPU xmodel on the board and print one JSON object.

Command line (on the board, or anywhere xir and vart import)::

    python -m anbench_fpga_dpu.board_runner --xmodel FILE --mode latency|throughput \
        [--threads N|auto] [--budget-s S]

Self-contained on purpose: it needs the Python standard library, numpy, the board
image's ``xir`` and ``vart``, and anbench's torch-free measurement engine, imported as
``anbench.measure.engine`` or, on a board without anbench, from an ``engine.py`` copied
next to this file. Nothing else of anbench is imported, so it can be copied to a board
whose image has no torch (see :mod:`anbench_fpga_dpu.remote`).

Procedure: deserialize the xmodel, require exactly one DPU subgraph, create one
``vart.Runner`` per thread, keep a bounded queue of ``execute_async`` jobs per thread
(``(job_id, status)`` handed to ``wait``), inputs quantized with round-and-saturate at
the input tensor's ``fix_point``. One work unit = one DPU job = one batch of the DPU's
batch size (``dims[0]`` of the input tensor, fixed by the compiled DPU).

* latency mode: 1 thread, 1 job in flight, ``latency_ms_*`` = time per job;
* throughput mode: N threads (default: 5 for a DPUCZDX8G, 6 for a DPUCVDX8G, as the
  original), ``throughput_ips_*`` = images per second; ``--threads auto`` tries 1, 2, ...
  threads until two counts in a row fail to beat the best by 3 %, reports the best (the
  fewest threads that no other count beats by more than 3 %) and the whole ``curve``.

Errors print ``{"error": "..."}`` and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import threading
import time
from collections import deque

# the timer windows are measured with (a module attribute so a test can hand the runner a
# simulated DPU's clock); budgets always run on the real clock
clock = time.perf_counter
JOBS_IN_FLIGHT = 8  # per thread in throughput mode (the original kept up to 9)
AUTO_MAX_THREADS = 16
AUTO_GAIN = 1.03  # a thread count must beat the best so far by 3 % to count as a gain
AUTO_PATIENCE = 2
DEFAULT_THREADS = {"DPUCZDX8G": 5, "DPUCVDX8G": 6}


class RunnerError(Exception):
    """Something the user can fix (bad xmodel, missing runtime); reported as JSON."""


# --- the engine: anbench's when installed, else a copy next to this file -------------------


def load_engine():
    """Return ``(module, source)``; source is "anbench", "sibling" or "" (no engine)."""
    try:
        from anbench.measure import engine  # noqa: PLC0415 - optional on a board
        return engine, "anbench"
    except ImportError:
        pass
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine.py")
    if not os.path.isfile(path):
        return None, ""
    spec = importlib.util.spec_from_file_location("_anbench_board_engine", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module, "sibling"


def time_units(step, budget_s: float) -> dict:
    """Time ``step(units) -> seconds`` and return seconds-per-unit statistics.

    The one place that talks to the engine; without one, a plain fallback (2 warm-up
    units, then windows of at least 50 ms until the budget is spent) keeps the runner usable.
    """
    engine, source = load_engine()
    if engine is not None:
        result = engine.run_engine(step, engine.EnginePolicy(budget_s=budget_s))
        return {"mean_s": result.mean, "std_s": result.std, "median_s": result.median,
                "ci_s": [result.ci_low, result.ci_high], "n": result.n,
                "warmup_discarded": result.warmup_discarded, "samples_s": list(result.samples),
                "verdict": result.verdict, "reasons": list(result.reasons), "engine": source}
    return _fallback_timing(step, budget_s)


def _fallback_timing(step, budget_s: float) -> dict:
    deadline = time.perf_counter() + budget_s
    step(2)
    units = 1
    while step(units) < 0.05 and units < 1 << 20:
        units *= 2
    samples = []
    while len(samples) < 5 or (time.perf_counter() < deadline and len(samples) < 1000):
        samples.append(step(units) / units)
    std = statistics.stdev(samples)
    half = 2.0 * std / math.sqrt(len(samples))
    mean = statistics.fmean(samples)
    return {"mean_s": mean, "std_s": std, "median_s": statistics.median(samples), "ci_s": [mean - half, mean + half],
            "n": len(samples), "warmup_discarded": 1, "samples_s": samples, "verdict": "VALID", "reasons": [],
            "engine": "fallback"}


# --- graph and buffers -------------------------------------------------------------------


def dpu_subgraph(xir, path: str):
    """The single DPU subgraph of the xmodel at ``path``; RunnerError when there is not exactly one."""
    if not os.path.isfile(path):
        raise RunnerError(f"xmodel not found: {path}")
    try:
        root = xir.Graph.deserialize(path).get_root_subgraph()
    except RuntimeError as exc:
        raise RunnerError(f"cannot read xmodel {path}: {exc}") from None
    children = [] if root.is_leaf else root.toposort_child_subgraph()
    dpus = [s for s in children if s.has_attr("device") and s.get_attr("device").upper() == "DPU"]
    if len(dpus) != 1:
        devices = [s.get_attr("device") if s.has_attr("device") else "?" for s in children]
        raise RunnerError(f"{path} has {len(dpus)} DPU subgraphs (need exactly 1; subgraph devices: "
                          f"{', '.join(devices) or 'none'}): recompile without CPU fallback")
    return dpus[0]


def quantize_input(np, images, fix_point: int):
    """float images -> int8 at ``fix_point`` with rounding and saturation (the original truncated)."""
    scaled = np.rint(np.asarray(images, dtype=np.float32) * (2.0 ** fix_point))
    return np.ascontiguousarray(np.clip(scaled, -128, 127).astype(np.int8))


class DpuWorker:
    """One thread's runner and buffers: one input batch, one output set per job in flight."""

    def __init__(self, np, vart, subgraph, depth: int, seed: int) -> None:
        self.runner = vart.Runner.create_runner(subgraph, "run")
        inputs, outputs = self.runner.get_input_tensors(), self.runner.get_output_tensors()
        rng = np.random.default_rng(seed)
        self.inputs = [quantize_input(np, rng.standard_normal(tuple(t.dims), dtype=np.float32), t.get_attr("fix_point"))
                       for t in inputs]
        self.outputs = [[np.zeros(tuple(t.dims), dtype=np.int8) for t in outputs] for _ in range(depth)]
        self.depth = depth
        self.batch = int(inputs[0].dims[0])

    def run(self, take, on_done=None) -> None:
        """Submit jobs while ``take()`` grants them, up to ``depth`` in flight; wait for all.
        ``on_done()`` is called after each completed job."""
        pending: deque = deque()
        slot = 0
        while True:
            while len(pending) < self.depth and take():
                pending.append(self.runner.execute_async(self.inputs, self.outputs[slot]))
                slot = (slot + 1) % self.depth
            if not pending:
                return
            self.runner.wait(pending.popleft())
            if on_done is not None:
                on_done()


def run_jobs(worker: DpuWorker, jobs: int) -> float:
    """Run ``jobs`` DPU jobs one after the other on one worker; return elapsed seconds."""
    left = [jobs]

    def take() -> bool:
        left[0] -= 1
        return left[0] >= 0

    start = clock()
    worker.run(take)
    return clock() - start


class Pipeline:
    """Worker threads that keep their DPU queues full until stopped.

    Throughput windows count completions of this one continuous stream and run from one
    completion to another, so no window pays for filling or draining the queues, and
    completions that arrive in bursts (cores finishing together) do not split unevenly
    between windows.
    """

    def __init__(self, workers: list) -> None:
        self.workers = workers
        self.done = 0
        self.last_done_t = 0.0  # when completion number ``done`` happened
        self.target = -1
        self.target_t = 0.0
        self.stopping = False
        self.errors: list = []
        self.cond = threading.Condition()
        self.threads = [threading.Thread(target=self._body, args=(w,), daemon=True) for w in workers]

    def _take(self) -> bool:
        return not self.stopping

    def _completed(self) -> None:
        now = clock()
        with self.cond:
            self.done += 1
            self.last_done_t = now
            if self.done == self.target:
                self.target_t = now
                self.cond.notify_all()

    def _body(self, worker) -> None:
        try:
            worker.run(self._take, on_done=self._completed)
        except BaseException as exc:  # handed to the measuring thread
            with self.cond:
                self.errors.append(exc)
                self.cond.notify_all()

    def __enter__(self) -> "Pipeline":
        self.last_done_t = clock()
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping = True
        for t in self.threads:
            t.join()

    def step(self, units: int) -> float:
        """Seconds from the latest completion to the ``units``-th completion after it."""
        with self.cond:
            start_t = self.last_done_t
            self.target = self.done + units
            self.cond.wait_for(lambda: self.done >= self.target or self.errors)
            if self.errors:
                raise self.errors[0]
            return self.target_t - start_t


# --- modes -------------------------------------------------------------------------------


def dpu_facts(subgraph, workers) -> dict:
    attr = lambda name: subgraph.get_attr(name) if subgraph.has_attr(name) else None  # noqa: E731
    return {"dpu_subgraph": subgraph.get_name(), "dpu_target": attr("dpu_name"),
            "dpu_fingerprint": attr("dpu_fingerprint"), "dpu_batch": workers[0].batch}


def measure_latency(np, vart, subgraph, budget_s: float) -> dict:
    workers = [DpuWorker(np, vart, subgraph, depth=1, seed=0)]
    t = time_units(lambda units: run_jobs(workers[0], units), budget_s)
    ms = lambda s: None if s is None else 1000.0 * s  # noqa: E731
    return {**dpu_facts(subgraph, workers), "mode": "latency", "threads": 1, "jobs_in_flight": 1,
            "latency_ms_mean": ms(t["mean_s"]), "latency_ms_std": ms(t["std_s"]),
            "latency_ms_median": ms(t["median_s"]), "latency_ms_ci": [ms(v) for v in t["ci_s"]],
            "samples_ms": [ms(v) for v in t["samples_s"]], "n": t["n"], "warmup_discarded": t["warmup_discarded"],
            "verdict": t["verdict"], "reasons": t["reasons"], "engine": t["engine"]}


def _throughput_at(np, vart, subgraph, threads: int, budget_s: float) -> dict:
    workers = [DpuWorker(np, vart, subgraph, depth=JOBS_IN_FLIGHT, seed=i) for i in range(threads)]
    # one unit = one job per thread: cores finishing together complete up to `threads` jobs
    # at once, so a window of whole rounds never ends inside such a burst by chance
    with Pipeline(workers) as pipeline:
        t = time_units(lambda rounds: pipeline.step(rounds * threads), budget_s)
    images = workers[0].batch * threads  # per unit
    rates = [images / s for s in t["samples_s"] if s]
    return {**dpu_facts(subgraph, workers), "threads": threads, "jobs_in_flight": JOBS_IN_FLIGHT,
            "throughput_ips_mean": images / t["mean_s"] if t["mean_s"] else None,
            "throughput_ips_std": statistics.stdev(rates) if len(rates) > 1 else None,
            "throughput_ips_ci": [images / v if v else None for v in reversed(t["ci_s"])],
            "n": t["n"], "warmup_discarded": t["warmup_discarded"], "verdict": t["verdict"], "reasons": t["reasons"],
            "engine": t["engine"]}


def default_threads(subgraph) -> int:
    target = subgraph.get_attr("dpu_name") if subgraph.has_attr("dpu_name") else ""
    return next((n for prefix, n in DEFAULT_THREADS.items() if str(target).startswith(prefix)), 4)


def measure_throughput(np, vart, subgraph, threads, budget_s: float) -> dict:
    if threads != "auto":
        return {"mode": "throughput", **_throughput_at(np, vart, subgraph, threads or default_threads(subgraph), budget_s)}
    per_try_s = budget_s / 6.0
    curve, best, misses = [], None, 0
    for n in range(1, AUTO_MAX_THREADS + 1):
        point = _throughput_at(np, vart, subgraph, n, per_try_s)
        curve.append({k: point[k] for k in ("threads", "throughput_ips_mean", "throughput_ips_std", "verdict")})
        if best is None or point["throughput_ips_mean"] > best["throughput_ips_mean"] * AUTO_GAIN:
            best, misses = point, 0
        else:
            misses += 1
            if misses >= AUTO_PATIENCE:
                break
    return {"mode": "throughput", **best, "threads_auto": True, "curve": curve}


# --- command line ------------------------------------------------------------------------


def _threads(text: str):
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive integer or 'auto'") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer or 'auto'")
    return value


def _budget_s(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a positive number of seconds") from None
    if not (math.isfinite(value) and value > 0):  # nan would pass a plain > 0 test's negation
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


class _JsonErrorParser(argparse.ArgumentParser):
    """Bad arguments come back like every other failure: one ``{"error": ...}`` line, status 2."""

    def error(self, message):
        print(json.dumps({"error": message}))
        sys.exit(2)


def parse_args(argv):
    p = _JsonErrorParser(prog="python -m anbench_fpga_dpu.board_runner",
                                description="Measure a compiled xmodel on the DPU; prints one JSON object.")
    p.add_argument("--xmodel", required=True, help="compiled xmodel (exactly one DPU subgraph)")
    p.add_argument("--mode", required=True, choices=("latency", "throughput"))
    p.add_argument("--threads", type=_threads, default=0,
                   help="throughput threads, or 'auto' to try counts (default: 5 on DPUCZDX8G, 6 on DPUCVDX8G)")
    p.add_argument("--budget-s", type=_budget_s, default=30.0, help="time budget of the measurement (seconds)")
    return p.parse_args(argv)


def run(args) -> dict:
    try:
        import numpy as np
        import vart
        import xir
    except ImportError as exc:
        raise RunnerError(f"{exc.name or exc} is not importable here: xir and vart come with the Vitis AI board "
                          "image (numpy with its Python)") from None
    subgraph = dpu_subgraph(xir, args.xmodel)
    if args.mode == "latency":
        out = measure_latency(np, vart, subgraph, args.budget_s)
    else:
        out = measure_throughput(np, vart, subgraph, args.threads, args.budget_s)
    out["xmodel"] = os.path.basename(args.xmodel)
    out["budget_s"] = args.budget_s
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        out = run(args)
    except (RunnerError, ValueError) as exc:  # ValueError: the engine's PolicyError (an impossible policy)
        print(json.dumps({"error": str(exc)}))
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
