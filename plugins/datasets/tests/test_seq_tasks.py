"""The NAS-Bench-360 tasks: original file formats (ours and another writer's), loaders, metrics, recipes."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from anbench.errors import AnbenchError
from anbench.plugin_types import DataRequest
from anbench.searchspace import named
from anbench.seq1d import Seq1dShape, sample_seq1d
from anbench.testing import DatasetContract
from anbench_datasets import DeepSeaDataset, EcgDataset, SatelliteDataset
from anbench_datasets import seq_data, seq_files, seq_metrics
from anbench_datasets.seq_recipes import RECIPES
from anbench_datasets.seq_samples import make_sample

DATASETS = {"ecg": EcgDataset, "satellite": SatelliteDataset, "deepsea": DeepSeaDataset}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ("ANBENCH_ECG_DIR", "ANBENCH_SATELLITE_DIR", "ANBENCH_DEEPSEA_DIR"):
        monkeypatch.delenv(var, raising=False)
    seq_data._CACHE.clear()


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("samples")
    for task in DATASETS:
        make_sample(task, root / task)
    return root


def whole_split(dataset, folder, split="val", batch_size=7, **kw):
    batches = list(dataset.loader(DataRequest(split, batch_size, data_dir=folder, **kw)))
    return [torch.cat([b[i] for b in batches]) for i in range(len(batches[0]))]


# --- make-sample writes the original layouts ---------------------------------------------------------


def test_make_sample_command_writes_files_and_refuses_to_overwrite(tmp_path):
    anbench = Path(sys.executable).with_name("anbench")
    out = tmp_path / "ecg"
    run = subprocess.run([str(anbench), "data", "make-sample", "--dataset", "ecg", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"wrote {out / 'challenge2017.pkl'} (48 recordings)" in run.stdout
    again = subprocess.run([str(anbench), "data", "make-sample", "--dataset", "ecg", "--out", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 2 and again.stderr.strip().count("\n") == 0
    assert again.stderr.startswith("error: ") and "--overwrite" in again.stderr
    helped = subprocess.run([str(anbench), "data", "make-sample", "--help"], capture_output=True, text=True)
    assert "Example" in helped.stdout and "anbench data make-sample --dataset ecg" in helped.stdout


def test_make_sample_bad_seed_and_unwritable_out_are_user_errors(tmp_path):
    anbench = Path(sys.executable).with_name("anbench")
    negative = subprocess.run([str(anbench), "data", "make-sample", "--dataset", "ecg", "--out", str(tmp_path / "o"),
                               "--seed", "-1"], capture_output=True, text=True)
    assert negative.returncode == 2 and "Traceback" not in negative.stderr and "--seed" in negative.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(AnbenchError, match="cannot write the sample into"):
        make_sample("ecg", blocker / "sub", seed=0)  # the parent is a file: mkdir raises an OSError


def test_ecg_sample_is_a_pickled_dict_of_object_arrays(samples):
    with open(samples / "ecg" / "challenge2017.pkl", "rb") as f:
        content = pickle.load(f)
    assert set(content) == {"data", "label"}
    data, label = content["data"], content["label"]
    assert data.dtype == object and data.ndim == 1 and len(data) == len(label) == 48
    assert all(s.ndim == 1 and s.dtype == np.int16 for s in data) and len({len(s) for s in data}) > 10
    assert set(label) == {"N", "A", "O", "~"}


def test_satellite_sample_is_an_npy_dict_with_labels_1_to_24(samples):
    for split, n in (("train", 480), ("test", 120)):
        content = np.load(samples / "satellite" / f"satellite_{split}.npy", allow_pickle=True).item()
        assert set(content) == {"data", "label"}
        assert content["data"].shape == (n, 46) and content["label"].shape == (n,)
        assert content["label"].min() >= 1 and content["label"].max() <= 24


def test_deepsea_sample_is_an_npz_of_one_hot_n_x_1000_x_4(samples):
    with np.load(samples / "deepsea" / "deepsea_filtered.npz") as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
        x, y = npz["x_train"], npz["y_train"]
        assert x.shape == (128, 1000, 4) and y.shape == (128, 36)
        assert (x.sum(axis=2) == 1).all() and set(np.unique(y)) == {0, 1}
        assert npz["x_test"].shape == (32, 1000, 4)


# --- another writer's files load the same way ----------------------------------------------------------


def test_ecg_from_another_writer_lists_and_floats(tmp_path, samples):
    with open(samples / "ecg" / "challenge2017.pkl", "rb") as f:
        ours = pickle.load(f)
    (tmp_path / "plain").mkdir()
    plain = {"label": [str(x) for x in ours["label"]], "data": [s.astype(float).tolist() for s in ours["data"]]}
    with open(tmp_path / "plain" / "challenge2017.pkl", "wb") as f:
        pickle.dump(plain, f, protocol=2)
    a = whole_split(EcgDataset(), samples / "ecg")
    b = whole_split(EcgDataset(), tmp_path / "plain")
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_ecg_preprocessing_split_windows_zscore_and_record_ids(samples):
    sklearn = pytest.importorskip("sklearn.model_selection")
    with open(samples / "ecg" / "challenge2017.pkl", "rb") as f:
        raw = pickle.load(f)
    n = len(raw["label"])
    ids = np.arange(n)
    want_train, want_test = sklearn.train_test_split(ids, test_size=0.1, random_state=0)
    train, test = seq_data.ecg_record_split(n)
    assert list(train) == list(want_train) and list(test) == list(want_test)

    windows, labels, records = whole_split(EcgDataset(), samples / "ecg", split="test")
    strides = {"N": 500, "A": 83, "O": 250, "~": 25}
    expected = []
    for r in want_test:  # the original's slide-and-cut, recording by recording
        signal = raw["data"][r].astype(np.float64)
        signal = (signal - signal.mean()) / signal.std()
        for start in range(0, len(signal) - 1000, strides[raw["label"][r]]):
            expected.append((r, "NAO~".index(raw["label"][r]), signal[start:start + 1000]))
    assert windows.shape == (len(expected), 1, 1000)
    assert records.tolist() == [e[0] for e in expected], "test windows keep their recording's index"
    assert labels.tolist() == [e[1] for e in expected]
    np.testing.assert_allclose(windows[:, 0].numpy(), np.stack([e[2] for e in expected]), atol=1e-5)
    train_batch = next(iter(EcgDataset().loader(DataRequest("train", 8, data_dir=samples / "ecg"))))
    assert len(train_batch) == 2 and train_batch[0].shape == (8, 1, 1000)


def test_satellite_from_another_writer_float64_int32(tmp_path, samples):
    ours = {s: np.load(samples / "satellite" / f"satellite_{s}.npy", allow_pickle=True).item() for s in ("train", "test")}
    for split, content in ours.items():
        np.save(tmp_path / f"satellite_{split}.npy",
                {"label": content["label"].astype(np.int32), "data": content["data"].astype(np.float64)})
    a = whole_split(SatelliteDataset(), samples / "satellite")
    b = whole_split(SatelliteDataset(), tmp_path)
    assert torch.equal(a[1], b[1]) and torch.allclose(a[0], b[0], atol=1e-5)
    data, label = ours["test"]["data"].astype(np.float64), ours["test"]["label"]
    zscored = (data - data.mean(axis=1, keepdims=True)) / data.std(axis=1, keepdims=True)
    assert a[0].shape == (120, 1, 46)
    np.testing.assert_allclose(a[0][:, 0].numpy(), zscored, atol=1e-5)
    assert a[1].tolist() == (label - 1).tolist()


def test_deepsea_from_another_writer_bool_x_float_y_uncompressed(tmp_path, samples):
    with np.load(samples / "deepsea" / "deepsea_filtered.npz") as npz:
        ours = {k: npz[k] for k in npz.files}
    np.savez(tmp_path / "deepsea_filtered.npz", x_train=ours["x_train"].astype(bool), y_train=ours["y_train"].astype(float),
             x_test=ours["x_test"].astype(bool), y_test=ours["y_test"].astype(float))
    a = whole_split(DeepSeaDataset(), samples / "deepsea")
    b = whole_split(DeepSeaDataset(), tmp_path)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[0].shape == (32, 4, 1000) and a[0].dtype == torch.float32
    assert torch.equal(a[0], torch.from_numpy(ours["x_test"]).permute(0, 2, 1).float())
    assert torch.equal(a[1], torch.from_numpy(ours["y_test"]).float())


# --- missing and malformed files: one line naming the file and the format ------------------------------


def _pickle(obj):
    return pickle.dumps(obj)


def _npy(obj):
    buffer = io.BytesIO()
    np.save(buffer, obj, allow_pickle=True)
    return buffer.getvalue()


def _npz(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


GOOD_X, GOOD_Y = np.eye(4, dtype=np.uint8)[np.zeros((3, 1000), int)], np.zeros((3, 36), np.uint8)
BAD_FILES = {
    "ecg-garbage": ("ecg", "challenge2017.pkl", b"not a pickle at all", "cannot be read"),
    "ecg-list": ("ecg", "challenge2017.pkl", _pickle([1, 2, 3]), "not a dict"),
    "ecg-no-label": ("ecg", "challenge2017.pkl", _pickle({"data": [np.zeros(2000)]}), "has no 'label'"),
    "ecg-bad-label": ("ecg", "challenge2017.pkl", _pickle({"data": [np.zeros(2000)], "label": ["X"]}), "label[0]"),
    "ecg-count": ("ecg", "challenge2017.pkl", _pickle({"data": [np.zeros(2000)], "label": ["N", "A"]}), "2"),
    "ecg-text-signal": ("ecg", "challenge2017.pkl", _pickle({"data": [["a", "b"]], "label": ["N"]}), "data[0]"),
    "ecg-nan": ("ecg", "challenge2017.pkl", _pickle({"data": [np.full(2000, np.nan)], "label": ["N"]}), "NaN"),
    "ecg-code": ("ecg", "challenge2017.pkl", _pickle({"data": _Evil(), "label": []}), "refusing to load"),
    "sat-not-npy": ("satellite", "satellite_train.npy", b"\x93NUMPY garbage", "not a .npy"),
    "sat-plain-array": ("satellite", "satellite_train.npy", _npy(np.zeros((3, 46))), "not a dict"),
    "sat-steps": ("satellite", "satellite_train.npy", _npy({"data": np.zeros((3, 40)), "label": np.ones(3)}), "40 steps"),
    "sat-label-0": ("satellite", "satellite_train.npy", _npy({"data": np.zeros((3, 46)), "label": np.zeros(3)}), "1..24"),
    "deepsea-zip": ("deepsea", "deepsea_filtered.npz", b"PK\x03\x04 broken", "cannot be read"),
    "deepsea-keys": ("deepsea", "deepsea_filtered.npz", _npz(x_train=GOOD_X), "has no array 'y_train'"),
    "deepsea-layout": ("deepsea", "deepsea_filtered.npz",
                       _npz(x_train=GOOD_X.transpose(0, 2, 1), y_train=GOOD_Y), "not N x 1000 x 4"),
    "deepsea-y": ("deepsea", "deepsea_filtered.npz", _npz(x_train=GOOD_X, y_train=GOOD_Y + 2), "other than 0 and 1"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_malformed_file_is_one_line_naming_file_and_format(case, tmp_path, samples, capsys):
    task, name, content, why = BAD_FILES[case]
    folder = tmp_path / task
    folder.mkdir()
    for other in (samples / task).iterdir():
        (folder / other.name).write_bytes(other.read_bytes())
    (folder / name).write_bytes(content)
    with pytest.raises(AnbenchError) as error:
        DATASETS[task]().check(folder)
    message = str(error.value)
    assert "\n" not in message and str(folder / name) in message and why in message, message
    assert "expected " in message
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.parametrize("task", DATASETS)
def test_missing_files_and_folders(task, tmp_path):
    dataset = DATASETS[task]()
    with pytest.raises(AnbenchError, match=f"pass --data-dir or set {dataset.env_var}"):
        dataset.loader(DataRequest("train", 4))
    with pytest.raises(AnbenchError, match="is not a folder"):
        dataset.check(tmp_path / "nowhere")
    with pytest.raises(AnbenchError) as error:
        dataset.check(tmp_path)
    assert "not found; expected" in str(error.value) and str(tmp_path) in str(error.value)


def test_environment_variable_names_the_folder_when_no_data_dir(monkeypatch, samples):
    monkeypatch.setenv("ANBENCH_SATELLITE_DIR", str(samples / "satellite"))
    assert SatelliteDataset().availability() is None
    assert len(list(SatelliteDataset().loader(DataRequest("test", 50)))) == 3


def test_unknown_split_is_one_line(samples):
    with pytest.raises(AnbenchError, match="splits train, val, test, not 'dev'"):
        EcgDataset().loader(DataRequest("dev", 4, data_dir=samples / "ecg"))


# --- sharding -------------------------------------------------------------------------------------------


def test_val_shards_cover_every_sample_once_in_order_and_train_shards_are_disjoint(samples):
    dataset, folder = DeepSeaDataset(), samples / "deepsea"
    whole = whole_split(dataset, folder)
    parts = [whole_split(dataset, folder, rank=r, world_size=3) for r in range(3)]
    assert all(torch.equal(torch.cat([p[i] for p in parts]), whole[i]) for i in range(2))
    seen = []
    for rank in range(3):
        ids = seq_data.shard(128, DataRequest("train", 8, rank=rank, world_size=3, seed=4, epoch=2))
        assert len(ids) == 128 // 3
        seen.extend(ids.tolist())
    assert len(set(seen)) == len(seen)
    same = seq_data.shard(128, DataRequest("train", 8, seed=4, epoch=2))
    assert same.tolist() == seq_data.shard(128, DataRequest("train", 8, seed=4, epoch=2)).tolist()
    assert same.tolist() != seq_data.shard(128, DataRequest("train", 8, seed=4, epoch=3)).tolist()
    loader = dataset.loader(DataRequest("train", 50, data_dir=folder, drop_last=True, max_samples=120))
    assert len(loader) == 2 and [b[0].shape[0] for b in loader] == [50, 50]


# --- metrics against scikit-learn on fixed predictions ------------------------------------------------------


def test_ecg_record_macro_f1_equals_majority_vote_and_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    groups = np.sort(rng.integers(0, 40, 600))
    record_label = rng.integers(0, 4, 40)
    labels = record_label[groups]
    logits = rng.normal(size=(600, 4)) + 1.5 * np.eye(4)[labels] * (rng.random(600) < 0.6)[:, None]
    got = seq_metrics.record_macro_f1(torch.from_numpy(logits), torch.from_numpy(labels), torch.from_numpy(groups), 4)
    predicted = logits.argmax(axis=1)
    final_pred, final_gt = [], []
    for g in np.unique(groups):  # the original's vote: Counter(...).most_common(1)
        final_pred.append(Counter(predicted[groups == g]).most_common(1)[0][0])
        final_gt.append(Counter(labels[groups == g]).most_common(1)[0][0])
    want = metrics.f1_score(final_gt, final_pred, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert got["macro_f1"] == pytest.approx(want, abs=1e-12) and 0.2 < want < 1
    assert got["records"] == len(np.unique(groups))
    # windows in shuffled order: the vote only looks inside each recording
    perm = rng.permutation(600)
    shuffled = seq_metrics.record_macro_f1(logits[perm], labels[perm], groups[perm], 4)
    assert shuffled["records"] == got["records"]


def test_vote_ties_go_to_the_first_class_seen_like_counter():
    ids, votes = seq_metrics.vote_by_group(np.array([2, 1, 1, 2, 3, 0, 0, 3]), np.array([5, 5, 5, 5, 9, 9, 9, 9]))
    assert ids.tolist() == [5, 9] and votes.tolist() == [2, 3]


def test_macro_f1_counts_every_class_even_when_absent():
    metrics = pytest.importorskip("sklearn.metrics")
    true, predicted = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0])
    want = metrics.f1_score(true, predicted, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert seq_metrics.macro_f1(true, predicted, 4) == pytest.approx(want)


def test_deepsea_mean_auroc_and_aupr_equal_sklearn_curves():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y = (rng.random((300, 36)) < 0.3).astype(np.float32)
    logits = rng.normal(size=(300, 36)) + 0.8 * y
    logits[:, :6] = np.round(logits[:, :6], 1)  # ties in the scores
    got = DeepSeaDataset().evaluate(torch.from_numpy(logits), torch.from_numpy(y))
    aurocs, auprs = [], []
    for j in range(36):  # the original: roc_curve/precision_recall_curve + auc, NaN-mean
        fpr, tpr, _ = metrics.roc_curve(y[:, j], logits[:, j])
        precision, recall, _ = metrics.precision_recall_curve(y[:, j], logits[:, j])
        aurocs.append(metrics.auc(fpr, tpr))
        auprs.append(metrics.auc(recall, precision))
    assert got["mean_auroc"] == pytest.approx(np.nanmean(aurocs), abs=1e-12)
    assert got["mean_aupr"] == pytest.approx(np.nanmean(auprs), abs=1e-12)
    assert got["mean_auroc"] == pytest.approx(metrics.roc_auc_score(y, logits, average="macro"), abs=1e-12)


def test_a_target_with_one_class_is_left_out_of_the_means():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(8)
    y = (rng.random((100, 36)) < 0.4).astype(np.float32)
    y[:, 3] = 0
    logits = rng.normal(size=(100, 36))
    got = seq_metrics.multilabel_auc(logits, y)
    kept = [j for j in range(36) if j != 3]
    assert got["targets_scored"] == 35
    assert got["mean_auroc"] == pytest.approx(metrics.roc_auc_score(y[:, kept], logits[:, kept], average="macro"))


def test_satellite_top1_top5_equal_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 24, 500)
    logits = rng.normal(size=(500, 24)) + 2 * np.eye(24)[labels] * (rng.random(500) < 0.3)[:, None]
    got = SatelliteDataset().evaluate(torch.from_numpy(logits), torch.from_numpy(labels))
    assert got["top1"] == pytest.approx(100 * metrics.accuracy_score(labels, logits.argmax(axis=1)))
    assert got["top5"] == pytest.approx(100 * metrics.top_k_accuracy_score(labels, logits, k=5, labels=range(24)))


# --- the datasets as a trainer sees them --------------------------------------------------------------------


@pytest.mark.parametrize("task", DATASETS)
def test_model_costs_and_metric_of_each_task_end_to_end(task, samples):
    dataset = DATASETS[task]()
    assert dataset.shape() == Seq1dShape(*dataset.input_shape, dataset.num_classes, dataset.stem_stride)
    arch = sample_seq1d(1, seed=1)[0]
    model = dataset.build_model(arch, mode="deploy").eval()
    batch = whole_split(dataset, samples / task)
    with torch.no_grad():
        outputs = model(batch[0])
    assert outputs.shape == (batch[0].shape[0], dataset.num_classes)
    result = dataset.evaluate(outputs, *batch[1:])
    assert np.isfinite(result[dataset.metric_name])
    costs = dataset.costs(arch)
    assert costs.params == sum(p.numel() for p in model.parameters())


def test_recipes_are_spec_9_2():
    ecg, satellite, deepsea = RECIPES["ecg"], RECIPES["satellite"], RECIPES["deepsea"]
    assert (ecg["optimizer"], ecg["lr"], ecg["epochs"], ecg["batch_size"], ecg["loss"], ecg["precision"]) == \
        ("adam", 1e-3, 24, 256, "cross_entropy", "fp32")
    assert (satellite["optimizer"], satellite["epochs"], satellite["batch_size"], satellite["precision"]) == \
        ("adam", 16, 1024, "auto")
    assert (deepsea["optimizer"], deepsea["momentum"], deepsea["lr"], deepsea["loss"], deepsea["epochs"]) == \
        ("sgd", 0.9, 1e-3, "bce_with_logits", 16)
    for task, recipe in RECIPES.items():
        assert recipe["lr_schedule"] == "constant" and recipe["weight_decay"] == 0.0
        assert recipe["metric"] == DATASETS[task].metric_name and recipe["metric_selection"] == "final_epoch"
        defaults = DATASETS[task]().recipe_defaults
        assert defaults["optimizer"] == recipe["optimizer"] and "loss" not in defaults and "metric" not in defaults
        # the effective recipe stored with each record names the task's recipe
        from anbench.train.recipe import effective
        assert effective("proxified", defaults, {}, {})["recipe"] == f"nb360-{task}"


# --- the plugin contract kit, with the sample files in place --------------------------------------------------


@pytest.fixture(params=list(DATASETS))
def sample_dataset(request, samples, monkeypatch):
    dataset = DATASETS[request.param]()
    monkeypatch.setenv(dataset.env_var, str(samples / request.param))
    return dataset


class TestSequenceDatasetsWithFilesContract(DatasetContract):
    @pytest.fixture
    def dataset(self, sample_dataset):
        return sample_dataset


# --- end to end, as a new user runs it: make-sample, train, results, export ------------------------------------


def _anbench(*args, cwd):
    run = subprocess.run([sys.executable, "-m", "anbench", *map(str, args)], capture_output=True, text=True, cwd=cwd,
                         timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


TINY_TRAIN = ("--arch", "smallest", "--epochs", "1", "--seed", "0", "--max-train-samples", "48", "--max-val-samples", "48")


@pytest.mark.slow
@pytest.mark.parametrize("task", DATASETS)
def test_make_sample_train_results_export(task, tmp_path):
    dataset = DATASETS[task]()
    store = tmp_path / "anbench.db"
    _anbench("data", "make-sample", "--dataset", task, "--out", tmp_path / "data", cwd=tmp_path)
    out = _anbench("--store", store, "train", "--dataset", task, "--data-dir", tmp_path / "data", *TINY_TRAIN,
                   cwd=tmp_path)
    assert "1 trained" in out, out
    results = json.loads(_anbench("--store", store, "results", "--stage", "train", "--format", "json", cwd=tmp_path))
    assert len(results) == 1
    metrics = results[0]["metrics"]
    arch = dataset.canonical_arch(named("smallest"))
    assert results[0]["arch_id"] == arch.id and results[0]["target"] == task
    assert metrics["verdict"] == "VALID" and metrics["metric_name"] == dataset.metric_name
    assert np.isfinite(metrics[f"val_{dataset.metric_name}"]) and metrics["train_time_s"] > 0
    assert (metrics["metric_split"], metrics["metric_selection"], metrics["metric_epochs"]) == ("test", "final_epoch", [0])
    costs = dataset.costs(arch)
    assert (metrics["params_m"], metrics["macs_m"]) == (costs.params_m, costs.macs_m)
    settings = results[0]["settings"]
    assert settings["optimizer"] == RECIPES[task]["optimizer"] and settings["lr_schedule"] == "constant"
    table = _anbench("--store", store, "results", cwd=tmp_path)
    assert f"val_{dataset.metric_name}=" in table

    _anbench("--store", store, "export", "--format", "anb-json", "--out", tmp_path / "anb", cwd=tmp_path)
    record = json.loads((tmp_path / "anb" / "result_0.json").read_text())
    name = "val_top1" if dataset.metric_name == "top1" else dataset.metric_name
    assert record["metrics"][name] == metrics[f"val_{dataset.metric_name}"]
    assert record["model_info"] == {"macs": costs.macs_m, "params": costs.params_m}
    _anbench("--store", store, "export", "--format", "csv", "--out", tmp_path / "csv", cwd=tmp_path)
    assert (tmp_path / "csv" / "results.csv").read_text().count("\n") == 2


@pytest.mark.slow
def test_another_writers_ecg_file_trains_the_same_way(tmp_path, samples):
    with open(samples / "ecg" / "challenge2017.pkl", "rb") as f:
        ours = pickle.load(f)
    (tmp_path / "plain").mkdir()
    with open(tmp_path / "plain" / "challenge2017.pkl", "wb") as f:
        pickle.dump({"data": [s.tolist() for s in ours["data"]], "label": list(ours["label"])}, f)
    losses = []
    for name, folder in (("ours", samples / "ecg"), ("plain", tmp_path / "plain")):
        store = tmp_path / f"{name}.db"
        _anbench("--store", store, "train", "--dataset", "ecg", "--data-dir", folder, *TINY_TRAIN, cwd=tmp_path)
        row = json.loads(_anbench("--store", store, "results", "--format", "json", cwd=tmp_path))[0]
        losses.append((row["metrics"]["val_loss"], row["metrics"]["val_macro_f1"], row["metrics"]["curves"][0]["train_loss"]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)


@pytest.mark.slow
def test_satellite_ffcv_files_load_like_the_npy_files(tmp_path, samples):
    from ffcv.fields import IntField, NDArrayField
    from ffcv.writer import DatasetWriter

    class Series:  # what the original FFCV training read: normalised series, labels 0..23
        def __init__(self, data, labels):
            self.data, self.labels = data, labels

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return self.data[i], int(self.labels[i])

    for split in ("train", "test"):
        data, labels = seq_files.read_satellite(samples / "satellite", split)
        normalised = seq_data.zscore(data.astype(np.float64), axis=1).astype(np.float32)
        writer = DatasetWriter(str(tmp_path / f"satellite_{split}.beton"),
                               {"covariate": NDArrayField(shape=(46,), dtype=np.dtype("float32")), "label": IntField()},
                               num_workers=1)
        writer.from_indexed_dataset(Series(normalised, labels))
    assert SatelliteDataset().folder(tmp_path) and not (tmp_path / "satellite_test.npy").exists()
    a = whole_split(SatelliteDataset(), samples / "satellite")
    b = whole_split(SatelliteDataset(), tmp_path)
    assert torch.equal(a[1], b[1]) and torch.allclose(a[0], b[0], atol=1e-5)
    with open(tmp_path / "satellite_train.beton", "r+b") as f:
        f.write(b"\0" * 64)
    seq_data._CACHE.clear()
    with pytest.raises(AnbenchError, match="satellite_train.beton: cannot be read"):
        SatelliteDataset().check(tmp_path)
