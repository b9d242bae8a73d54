"""The datasets plugin: what it registers and how honestly it answers availability."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import anbench_datasets
from anbench.errors import AnbenchError
from anbench.testing import DatasetContract, register_test_plugin
from anbench_datasets import DATASETS, DeepSeaDataset, EcgDataset, ImageNetDataset, SatelliteDataset

ENV_VARS = ("ANBENCH_IMAGENET_DIR", "ANBENCH_ECG_DIR", "ANBENCH_SATELLITE_DIR", "ANBENCH_DEEPSEA_DIR")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def have_ffcv(monkeypatch):
    """Pretend ffcv is importable (find_spec is the only thing the plugin asks)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name == "ffcv" else real(name, *a))


def test_registers_four_datasets_with_their_shapes(anbench_host):
    register_test_plugin(anbench_host, anbench_datasets, name="datasets")
    assert not anbench_host.errors
    got = {name: (d.task, d.num_classes, tuple(d.input_shape))
           for name, d in anbench_host.registry.items["datasets"].items() if name != "synthetic"}
    assert got == {
        "imagenet": ("image2d", 1000, (3, 224, 224)),
        "ecg": ("seq1d", 4, (1, 1000)),
        "satellite": ("seq1d", 24, (1, 46)),
        "deepsea": ("seq1d", 36, (4, 1000)),
    }


def test_import_is_cheap():
    code = "import sys, anbench_datasets; print(sorted({'torch', 'ffcv', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_imagenet_without_ffcv(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ffcv" else real(name, *a))
    monkeypatch.setenv("ANBENCH_IMAGENET_DIR", str(tmp_path))
    assert ImageNetDataset().availability() == "ffcv is not installed"


def test_imagenet_needs_its_folder(have_ffcv, monkeypatch, tmp_path):
    wanted = "set ANBENCH_IMAGENET_DIR to the folder with the train/val .ffcv files"
    assert ImageNetDataset().availability() == wanted
    monkeypatch.setenv("ANBENCH_IMAGENET_DIR", str(tmp_path / "missing"))
    assert ImageNetDataset().availability() == wanted
    monkeypatch.setenv("ANBENCH_IMAGENET_DIR", str(tmp_path))
    (tmp_path / "train_400_0.50_90.ffcv").write_bytes(b"")
    reason = ImageNetDataset().availability()
    assert reason.startswith("ANBENCH_IMAGENET_DIR=") and "val*.ffcv" in reason and "train" not in reason
    (tmp_path / "val_400_0.50_90.ffcv").write_bytes(b"")
    assert ImageNetDataset().availability() is None


@pytest.mark.parametrize("dataset_class, var, files", [
    (EcgDataset, "ANBENCH_ECG_DIR", ["challenge2017.pkl"]),
    (SatelliteDataset, "ANBENCH_SATELLITE_DIR", ["satellite_train.npy", "satellite_test.npy"]),
    (DeepSeaDataset, "ANBENCH_DEEPSEA_DIR", ["deepsea_filtered.npz"]),
])
def test_sequence_datasets_name_their_variable_and_files(monkeypatch, tmp_path, dataset_class, var, files):
    reason = dataset_class().availability()
    assert reason.startswith(f"set {var} ") and all(name in reason for name in files)
    monkeypatch.setenv(var, str(tmp_path))
    for name in files[:-1]:
        (tmp_path / name).write_bytes(b"")
    reason = dataset_class().availability()
    assert reason == f"{var}={tmp_path} has no {files[-1]}" + (" or satellite_test.beton" if var == "ANBENCH_SATELLITE_DIR" else "")
    (tmp_path / files[-1]).write_bytes(b"")
    assert dataset_class().availability() is None


@pytest.fixture(params=DATASETS, ids=lambda cls: cls.name)
def any_dataset(request):
    return request.param()


class TestDatasetsContract(DatasetContract):
    @pytest.fixture
    def dataset(self, any_dataset):
        return any_dataset


def test_imagefolder_labels_come_from_train_even_when_val_lacks_a_class(tmp_path):
    from anbench_datasets.imagenet import folder_samples

    for split, classes in (("train", ("a", "b", "c")), ("val", ("a", "c"))):  # val has no 'b'
        for name in classes:
            (tmp_path / split / name).mkdir(parents=True)
            (tmp_path / split / name / "x.JPEG").write_bytes(b"")
    labels = {path.parent.name: label for path, label in folder_samples(tmp_path / "val")}
    assert labels == {"a": 0, "c": 2}  # 'c' is class 2 in train/, not 1
    (tmp_path / "val" / "z").mkdir()
    with pytest.raises(AnbenchError, match="class folder 'z' is not in"):
        folder_samples(tmp_path / "val")
