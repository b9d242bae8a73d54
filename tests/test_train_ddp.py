"""DDP through the real torchrun with 2 CPU processes (gloo)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _env():
    # torchrun would set OMP_NUM_THREADS=1 itself; keep the log quiet about it
    return dict(os.environ, OMP_NUM_THREADS="1")


@pytest.mark.slow
def test_torchrun_two_processes_train_and_store_once(tmp_path):
    from anbench.store import Store

    store = tmp_path / "s.db"
    cmd = TORCHRUN + ["-m", "anbench", "--store", str(store), "train", "--dataset", "synthetic", "-n", "2", "--seed",
                      "3", "--epochs", "1", "--max-train-samples", "128", "--max-val-samples", "63", "--batch-size",
                      "16", "--runs-dir", str(tmp_path / "runs")]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("2 trained on synthetic, 0 already stored") == 1  # rank 0 alone reports
    with Store.open(store) as opened:
        records = opened.results(stage="train")
    assert len(records) == 2
    for record in records:
        assert record.settings["world_size"] == 2
        # 63 val samples split 32 + 31 over the ranks, reduced with sample weights: every sample once
        assert record.metrics["val_samples"] == 63 and record.metrics["verdict"] == "VALID"
    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 trained on synthetic, 2 already stored" in again.stdout


@pytest.mark.slow
@pytest.mark.parametrize("mode, expected", [("nan", "DIVERGED"), ("error", "raised")])
def test_a_failure_on_one_rank_reaches_every_rank(tmp_path, mode, expected):
    cmd = TORCHRUN + [str(HERE / "helpers" / "ddp_one_rank_fails.py"), mode, str(tmp_path)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    outcomes = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert done.returncode == 0, done.stdout + done.stderr
    for outcome in outcomes:
        if expected == "DIVERGED":
            assert outcome["verdict"] == "DIVERGED" and outcome["epochs_done"] == 0, outcomes
        else:
            assert "raised" in outcome, outcomes
    if expected == "raised":
        assert "disk went away" in outcomes[1]["raised"] and "rank 1" in outcomes[1]["raised"]


@pytest.mark.slow
def test_a_rank_failing_under_the_cli_leaves_one_error_line_on_every_rank(tmp_path):
    # one process per rank, launched by hand: torchrun would SIGTERM rank 0 as soon as rank 1 exits
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [sys.executable, str(HERE / "helpers" / "ddp_cli_one_rank_fails.py"), "--store", str(tmp_path / "s.db"),
           "train", "--dataset", "synthetic", "--arch", "smallest", "--epochs", "1", "--max-train-samples", "128",
           "--max-val-samples", "32", "--batch-size", "16", "--runs-dir", str(tmp_path / "runs")]
    ranks = [subprocess.Popen(cmd, env=dict(_env(), RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2",
                                            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    (_, err0), (_, err1) = [p.communicate(timeout=300) for p in ranks]
    assert [p.returncode for p in ranks] == [2, 2], err0 + err1
    # rank 0's stop message to a rank that already left must not replace its own error
    assert err0.strip() == "error: training failed on another rank (its error is in its own output)", err0
    assert err1.strip() == "error: training failed on rank 1: OSError: disk went away", err1


def test_nproc_is_dropped_from_the_relaunched_command_line():
    from anbench.cli.train_cmd import _without_nproc

    assert _without_nproc(["train", "--nproc", "4", "-n", "2", "--nproc=3", "--seed", "1"]) == \
        ["train", "-n", "2", "--seed", "1"]


@pytest.mark.slow
def test_nproc_relaunches_itself_under_torchrun(tmp_path):
    from anbench.store import Store

    store = tmp_path / "s.db"
    cmd = [sys.executable, "-m", "anbench", "--store", str(store), "train", "--dataset", "synthetic", "--arch",
           "smallest", "--epochs", "1", "--max-train-samples", "64", "--max-val-samples", "16", "--batch-size", "16",
           "--nproc", "2", "--runs-dir", str(tmp_path / "runs")]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    with Store.open(store) as opened:
        (record,) = opened.results(stage="train")
    assert record.settings["world_size"] == 2 and record.metrics["val_samples"] == 16


@pytest.mark.slow
def test_torchrun_job_killed_mid_training_then_rerun_ends_with_every_record_once(tmp_path):
    import signal
    import time

    from anbench.store import Store

    store, runs = tmp_path / "s.db", tmp_path / "runs"
    cmd = TORCHRUN + ["-m", "anbench", "--store", str(store), "train", "--dataset", "synthetic", "--arch", "smallest",
                      "--arch", "zcu102-c", "--epochs", "4", "--max-train-samples", "128", "--max-val-samples", "32",
                      "--batch-size", "16", "--runs-dir", str(runs)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 400
        while len(list(runs.glob("synthetic/*/checkpoint.pt"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        # torchrun's workers sit in their own process groups: kill the whole tree at once, as a
        # cancelled job's cgroup is
        for pid in [proc.pid] + _descendants(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
    with Store.open(store) as opened:
        assert len(opened.results(stage="train")) == 1
    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 trained on synthetic, 1 already stored" in again.stdout
    with Store.open(store) as opened:
        records = opened.results(stage="train")
    assert len(records) == 2 and len({r.arch_id for r in records}) == 2
    resumed = [r for r in records if r.metrics.get("resumed_from_epoch")]
    assert len(resumed) == 1 and resumed[0].metrics["epochs_done"] == 4
    assert all(r.settings["world_size"] == 2 for r in records)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out
