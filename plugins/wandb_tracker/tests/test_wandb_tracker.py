"""The wandb tracker for real, offline (WANDB_MODE=offline): train -> offline runs -> collect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anbench.testing import TrackerContract

FAKE_KEY = "local-" + "7f3a9c" * 7  # looks like a key; must never reach a file we write


def wandb_env(tmp_path: Path, **extra) -> dict[str, str]:
    dirs = {name: tmp_path / name for name in ("wandb", "wandb-data", "wandb-cache", "wandb-config", "home")}
    for path in dirs.values():
        path.mkdir(exist_ok=True)
    env = dict(os.environ, WANDB_DIR=str(dirs["wandb"]), WANDB_DATA_DIR=str(dirs["wandb-data"]),
               WANDB_CACHE_DIR=str(dirs["wandb-cache"]), WANDB_CONFIG_DIR=str(dirs["wandb-config"]),
               HOME=str(dirs["home"]), WANDB_SILENT="true", OMP_NUM_THREADS="1")
    env.pop("WANDB_API_KEY", None)
    env.pop("WANDB_MODE", None)
    env.update(extra)
    return env


def anbench(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anbench", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=600)


def test_artifact_names_hold_only_characters_wandb_accepts():
    from anbench_wandb.tracker import artifact_name

    assert artifact_name("a1b2", "seed=3") == "model-a1b2-seed-3"
    assert artifact_name("x", "") == "model-x-run"
    assert artifact_name("x", "re measure/2") == "model-x-re-measure-2"


class TestWandbTrackerContract(TrackerContract):
    @pytest.fixture
    def tracker(self):
        from anbench_wandb import WandbTracker

        return WandbTracker()


@pytest.mark.slow
def test_offline_runs_are_collected_into_a_fresh_store_with_the_same_records(tmp_path):
    from anbench.store import Store

    env = wandb_env(tmp_path, WANDB_MODE="offline", WANDB_API_KEY=FAKE_KEY)
    trained = anbench("--store", tmp_path / "a.db", "train", "--dataset", "synthetic", "--arch", "smallest",
                      "--runs", "2", "--epochs", "2", "--max-train-samples", "64", "--max-val-samples", "32",
                      "--batch-size", "32", "--runs-dir", tmp_path / "runs", "--wandb", "--wandb-project", "anb-test",
                      env=env)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run_dirs = sorted((tmp_path / "wandb" / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 2  # one wandb run per model
    assert "tracker call" not in trained.stderr, trained.stderr  # no tracker call failed (e.g. log_artifact)
    for run_dir in run_dirs:  # each offline run holds its weights artifact, under a name wandb accepts
        log = b"".join(p.read_bytes() for p in run_dir.glob("run-*.wandb"))
        assert b"checkpoint.pt" in log and b"-seed-" in log, run_dir
    collected = anbench("--store", tmp_path / "fresh.db", "collect", "--from-wandb-dir", tmp_path / "wandb", env=env)
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "2 training records collected, 0 already stored" in collected.stdout
    with Store.open(tmp_path / "a.db") as a, Store.open(tmp_path / "fresh.db") as fresh:
        original = {r.key: r for r in a.results(stage="train")}
        rebuilt = {r.key: r for r in fresh.results(stage="train")}
    assert set(rebuilt) == set(original)  # same architecture, dataset, settings and run identity
    for key, record in rebuilt.items():
        assert record.metrics == original[key].metrics and record.source == "wandb"
        assert len(record.metrics["curves"]) == 2
    again = anbench("--store", tmp_path / "a.db", "collect", "--from-wandb-dir", tmp_path / "wandb", env=env)
    assert "0 training records collected, 2 already stored" in again.stdout
    # the key was in the environment: it is in no file that training or wandb wrote
    for path in list(tmp_path.rglob("*")):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert FAKE_KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_without_a_key_it_runs_offline_and_says_so_once(tmp_path):
    env = wandb_env(tmp_path)  # no key, no netrc, no WANDB_MODE
    trained = anbench("--store", tmp_path / "a.db", "train", "--dataset", "synthetic", "--arch", "smallest",
                      "--runs", "2", "--epochs", "1", "--max-train-samples", "32", "--max-val-samples", "16",
                      "--batch-size", "32", "--wandb", env=env)
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr.count("runs are written offline") == 1
    assert len(list((tmp_path / "wandb" / "wandb").glob("offline-run-*"))) == 2


def test_collect_needs_exactly_one_source_and_a_real_folder(tmp_path):
    env = wandb_env(tmp_path, WANDB_MODE="offline")
    both = anbench("collect", "--from-wandb", "a/b", "--from-wandb-dir", tmp_path, env=env)
    assert both.returncode == 2 and "exactly one" in both.stderr
    empty = anbench("--store", tmp_path / "s.db", "collect", "--from-wandb-dir", tmp_path, env=env)
    assert empty.returncode == 2 and "no wandb run folders" in empty.stderr and "Traceback" not in empty.stderr


def test_collect_from_an_online_project_without_a_key_is_one_line(tmp_path):
    env = wandb_env(tmp_path)  # no key, no netrc: wandb.Api() raises UsageError before any network use
    result = anbench("--store", tmp_path / "s.db", "collect", "--from-wandb", "team/project", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot read wandb project team/project")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
