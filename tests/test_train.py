"""anbench train: recipe, schedules, the loop, records, resume after SIGKILL, failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from anbench.errors import AnbenchError
from anbench.train import recipe as recipes
from anbench.train import schedule

# tiny runs: the smallest network, few samples (the synthetic data is 32x32)
TINY = ["--max-train-samples", "128", "--max-val-samples", "64", "--batch-size", "32", "--set", "val_batch_size=64"]


def train_results(store_path):
    from anbench.store import Store

    with Store.open(store_path) as store:
        return store.results(stage="train")


# --- schedules and recipes -------------------------------------------------------------


def test_triangular_lr_and_progressive_resizing_follow_the_spec():
    r = recipes.base_recipe("proxified")
    peak = schedule.peak_lr(r, world_size=4)  # 4 x 512 = the reference batch
    assert peak == pytest.approx(0.425)
    assert schedule.epoch_lr(0, r, peak) == pytest.approx(4.25e-5)
    assert schedule.epoch_lr(3, r, peak) == pytest.approx(0.394, abs=1e-3)
    assert schedule.epoch_lr(9, r, peak) == pytest.approx(0.212, abs=1e-3)
    assert schedule.epoch_lr(16, r, peak) == 0.0
    # within an epoch: linear between the epoch's boundary values, per step
    assert schedule.step_lr(2, 50, 100, r, peak) == pytest.approx((0.425 + schedule.epoch_lr(3, r, peak)) / 2)
    assert schedule.peak_lr(r, world_size=1) == pytest.approx(0.425 / 4)  # linear in the global batch
    assert [schedule.resolution(e, r) for e in range(16)] == [160] * 12 + [192] * 4


def test_recipe_layers_and_config_files(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text('epochs = 4\nlabel_smoothing = 0.2\nprecision = "bf16"\n')
    eff = recipes.effective("proxified", {"epochs": 2, "batch_size": 64}, recipes.load_config(toml), {"lr": "0.1"})
    assert (eff["epochs"], eff["batch_size"], eff["label_smoothing"], eff["lr"], eff["precision"]) == (4, 64, 0.2, 0.1, "bf16")
    cfg = tmp_path / "conf_local.cfg"
    cfg.write_text("[logging]\nsave = ./runs/\nnote = x\nreport_freq = 100\nfast = False\nuse_wandb = True\n"
                   "[model]\nlabel_smoothing = 0.1\nactivation_fn = relu\n"
                   "[dataloader]\ntrain_dataset = /d/train_400_0.50_90.ffcv\nval_dataset = /d/val.ffcv\n"
                   "num_workers = 8\nin_memory = True\n"
                   "[trainval]\nepochs = 16\ntrain_batch_size = 512\nval_batch_size = 128\nval_resolution = 256\n"
                   "min_res = 160\nmax_res = 192\nstart_ramp = 11\nend_ramp = 13\nseed = 1\n"
                   "[optimizer]\nlr = 0.425\nweight_decay = 1e-4\nlr_peak_epoch = 2\n"
                   "[distributed]\ndistributed = True\ncluster = local\nport = 33817\n")
    loaded = recipes.load_config(cfg)
    assert loaded["seed"] == 1 and loaded["val_batch_size"] == 128 and loaded["batch_size"] == 512
    assert recipes.effective("proxified", {}, loaded, {}) == dict(recipes.PROXIFIED, val_batch_size=128)
    bad = tmp_path / "bad.toml"
    bad.write_text("epoch = 3\n")
    with pytest.raises(AnbenchError, match="unknown recipe knob 'epoch'"):
        recipes.load_config(bad)
    exact = tmp_path / "exact.cfg"
    exact.write_text("[optimizer]\nlr = 0.068\nmin_lr = 1e-5\n")
    with pytest.raises(AnbenchError, match="exact"):
        recipes.load_config(exact)
    with pytest.raises(AnbenchError, match="epochs=.*not valid"):
        recipes.effective("proxified", {}, {}, {"epochs": "two"})


@pytest.mark.parametrize("name,text", [("f.toml", "seed = 1.5\n"), ("s.toml", 'seed = "3"\n'),
                                       ("n.toml", "seed = -1\n"), ("b.toml", "seed = true\n"),
                                       ("a.cfg", "[trainval]\nseed = abc\n"), ("m.cfg", "[trainval]\nseed = -2\n")])
def test_a_config_seed_that_is_not_a_non_negative_integer_is_a_user_error(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(AnbenchError, match="seed: must be a non-negative integer"):
        recipes.load_config(path)


def test_a_config_seed_is_an_int_in_both_formats(tmp_path):
    (tmp_path / "a.toml").write_text("seed = 4\n")
    (tmp_path / "b.cfg").write_text("[trainval]\nseed = 5\n")
    assert recipes.load_config(tmp_path / "a.toml")["seed"] == 4
    assert recipes.load_config(tmp_path / "b.cfg")["seed"] == 5


@pytest.mark.parametrize("knob,value", [("lr_batch_size", "0"), ("val_resolution", "-5"), ("min_res", "0"),
                                        ("crop_ratio", "0"), ("crop_ratio", "1.5"), ("lr", "-0.1"), ("lr", "nan"),
                                        ("dropout", "1"), ("weight_decay", "-1")])
def test_recipe_sizes_and_rates_out_of_range_are_user_errors(knob, value):
    with pytest.raises(AnbenchError, match=f"recipe: {knob} must"):
        recipes.effective("proxified", {}, {}, {knob: value})


def test_zero_lr_batch_size_is_one_line_from_the_cli(run_cli):
    result = run_cli("train", "--dataset", "synthetic", "--arch", "smallest", "--epochs", "1", *TINY,
                     "--set", "lr_batch_size=0")
    assert result.exit_code == 2 and result.stderr.startswith("error: recipe: lr_batch_size must be at least 1")


def test_weight_decay_skips_biases_and_batchnorm():
    from anbench.models import build_model
    from anbench.searchspace import named
    from anbench.train.loop import param_groups

    model = build_model(named("smallest"), num_classes=10)
    decay, no_decay = param_groups(model)
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


# --- the command -----------------------------------------------------------------------


@pytest.mark.slow
def test_train_stores_one_record_per_model_and_skips_them_next_time(run_cli, store_path, tmp_path):
    result = run_cli("train", "--dataset", "synthetic", "-n", "1", "--seed", "0", "--epochs", "2", "--runs", "2", *TINY,
                     "--arch", "smallest", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["status"] for r in rows] == ["trained"] * 4  # (smallest + 1 sampled) x 2 runs
    records = train_results(store_path)
    assert len(records) == 4 and len({r.run for r in records}) == 4
    for record in records:
        m = record.metrics
        assert m["verdict"] == "VALID" and m["metric_name"] == "top1" and m["metric"] == m["val_top1"]
        assert 0 <= m["val_top1"] <= 100 and m["val_top1"] <= m["val_top5"] <= 100
        assert m["metric_epochs"] == [1] and m["epochs_done"] == 2 and len(m["curves"]) == 2
        assert m["train_time_s"] > 0 and m["val_samples"] == 64
        assert m["train_time_s"] == sum(c["epoch_time_s"] for c in m["curves"])  # the same clock readings
        assert Path(m["checkpoint"]).is_file() and m["params_m"] > 0 and m["macs_m"] > 0
        assert record.settings["epochs"] == 2 and record.settings["trainer"] == "cpu"
        assert record.settings["precision"] == "fp32" and record.settings["recipe"] == "proxified"
        seeds = record.provenance["seeds"]
        assert seeds["run_seed"] == 0 and record.run == f"seed={seeds['model_seed']}"
    assert sorted({r.provenance["seeds"]["model_index"] for r in records}) == [0, 1]
    again = run_cli("train", "--dataset", "synthetic", "-n", "1", "--seed", "0", "--epochs", "2", "--runs", "2", *TINY,
                    "--arch", "smallest")
    assert again.exit_code == 0 and "0 trained on synthetic, 4 already stored" in again.output
    assert len(train_results(store_path)) == 4


@pytest.mark.slow
def test_synthetic_is_learnable_well_above_chance(run_cli, store_path):
    result = run_cli("train", "--dataset", "synthetic", "--arch", "smallest", "--epochs", "2",
                     "--max-val-samples", "256")
    assert result.exit_code == 0, result.output
    (record,) = train_results(store_path)
    assert record.metrics["val_top1"] >= 30.0, record.metrics  # chance is 10 %


def test_shards_split_the_list_without_overlap(run_cli, store_path, monkeypatch):
    from anbench.train.stage import TrainStage

    seen = []

    def fake_train(self, item, seeds, status=None):
        from anbench.workloop import StageOutput

        seen.append(item.arch.id)
        return StageOutput({"verdict": "VALID"}, {})

    monkeypatch.setattr(TrainStage, "train", fake_train)
    for shard in ("0/2", "1/2"):
        assert run_cli("train", "--dataset", "synthetic", "-n", "5", "--shard", shard, "--format", "json").exit_code == 0
    from anbench.searchspace import sample

    assert sorted(seen) == sorted(a.id for a in sample(5, 0)) and len(set(seen)) == 5
    result = run_cli("train", "--dataset", "synthetic", "-n", "5", "--shard", "2/2")
    assert result.exit_code == 2 and "need 0 <= I < N" in result.output


def test_bad_knobs_and_unavailable_things_are_one_line_errors(run_cli, tmp_path):
    result = run_cli("train", "--dataset", "synthetic", "--arch", "smallest", "--set", "nope=1")
    assert result.exit_code == 2 and "unknown recipe knob 'nope'" in result.output
    result = run_cli("train", "--dataset", "synthetic", "--arch", "smallest", "--set", "precision=fp16")
    assert result.exit_code == 2 and "trainer cpu trains fp32 or bf16" in result.output
    result = run_cli("train", "--dataset", "synthetic", "--arch", "smallest", "--config", tmp_path / "missing.toml")
    assert result.exit_code == 2 and "cannot read config" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_a_diverging_model_is_stored_as_diverged_and_the_sweep_goes_on(run_cli, store_path):
    bad = run_cli("train", "--dataset", "synthetic", "--arch", "smallest", "--epochs", "1", *TINY, "--lr", "1e30")
    assert bad.exit_code == 0, bad.output
    assert "DIVERGED" in bad.output
    (record,) = train_results(store_path)
    assert record.metrics["verdict"] == "DIVERGED" and "non-finite" in record.metrics["error"]
    assert record.metrics["val_top1"] is None


def test_nan_weights_with_a_finite_train_loss_are_diverged_not_valid(run_cli, store_path, monkeypatch):
    # weights that turn NaN in the last step leave the train loss finite; only val shows it
    from anbench.train.loop import Loop

    real = Loop._validate

    def nan_val(self, net, criterion, epoch):
        row = real(self, net, criterion, epoch)
        row["val_loss"] = float("nan")
        return row

    monkeypatch.setattr(Loop, "_validate", nan_val)
    result = run_cli("train", "--dataset", "synthetic", "--arch", "smallest", "--epochs", "1", *TINY)
    assert result.exit_code == 0, result.output
    (record,) = train_results(store_path)
    assert record.metrics["verdict"] == "DIVERGED", record.metrics
    assert "val loss" in record.metrics["error"]
    assert record.metrics["val_top1"] is None


# --- resume after SIGKILL ---------------------------------------------------------------


def _anbench(*args) -> list[str]:
    return [sys.executable, "-m", "anbench", *map(str, args)]


@pytest.mark.slow
def test_sigkill_mid_training_then_rerun_continues_and_stores_no_duplicate(tmp_path):
    store = tmp_path / "s.db"
    runs = tmp_path / "runs"
    cmd = _anbench("--store", store, "train", "--dataset", "synthetic", "--arch", "smallest", "--arch", "zcu102-c",
                   "--epochs", "4", "--runs-dir", runs, "--max-train-samples", "192", "--max-val-samples", "64",
                   "--batch-size", "32")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # the second model has finished an epoch (the first is stored): kill it mid-training
        deadline = time.monotonic() + 300
        while len(list(runs.glob("synthetic/*/checkpoint.pt"))) < 2:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no second checkpoint in time"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(train_results(store)) == 1
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 trained on synthetic, 1 already stored" in rerun.stdout
    records = train_results(store)
    assert len(records) == 2 and len({r.arch_id for r in records}) == 2
    resumed = [r for r in records if r.metrics.get("resumed_from_epoch")]
    assert len(resumed) == 1 and 1 <= resumed[0].metrics["resumed_from_epoch"] < 4
    assert resumed[0].metrics["epochs_done"] == 4 and [c["epoch"] for c in resumed[0].metrics["curves"]] == [0, 1, 2, 3]


def test_out_of_memory_is_a_failed_record_with_the_settings_that_caused_it(tmp_path):
    import torch

    from anbench.builtin.synthetic import SyntheticDataset
    from anbench.plugin_types import TrainRequest
    from anbench.searchspace import named
    from anbench.train.cpu_trainer import CpuTrainer

    class OutOfMemory(SyntheticDataset):
        def loader(self, request):
            batches = super().loader(request)
            if request.split != "train":
                return batches

            class Raising:
                def __len__(self):
                    return len(batches)

                def __iter__(self):
                    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
                    yield  # pragma: no cover

            return Raising()

    data = OutOfMemory()
    eff = CpuTrainer().resolve(recipes.effective("proxified", data.recipe_defaults, {}, {
        "epochs": 1, "batch_size": 32, "max_train_samples": 64, "max_val_samples": 32}))
    result = CpuTrainer().train(TrainRequest(named("smallest"), "synthetic", eff, tmp_path, seed=1, data=data))
    assert result.verdict == "FAILED" and result.curves == ()
    assert result.extra["error"] == "out of memory at epoch 0 (batch 32, resolution 32)"


@pytest.mark.slow
def test_two_workers_on_one_store_share_the_models(tmp_path):
    import re

    store = tmp_path / "s.db"
    cmd = _anbench("--store", store, "train", "--dataset", "synthetic", "-n", "3", "--seed", "4", "--epochs", "1",
                   "--runs-dir", tmp_path / "runs", "--max-train-samples", "64", "--max-val-samples", "32",
                   "--batch-size", "32")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    trained = [int(re.search(r"(\d+) trained on synthetic", out).group(1)) for out in outputs]
    assert sum(trained) == 3  # every model trained once, by one of the two
    records = train_results(store)
    assert len(records) == 3 and len({r.arch_id for r in records}) == 3
