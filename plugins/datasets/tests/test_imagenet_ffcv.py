"""ImageNet through FFCV for real: a generated ImageFolder of JPEGs, written with
`anbench data write-ffcv`, read by FFCV's loader and trained on; the Pillow fallback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anbench.plugin_types import DataRequest
from anbench.testing import DatasetContract

CLASSES = 3
PER_CLASS = {"train": 8, "val": 4}


def anbench(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "anbench", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))


def make_image_folder(root: Path) -> None:
    from PIL import Image, ImageDraw

    for split, count in PER_CLASS.items():
        for label in range(CLASSES):
            folder = root / split / f"n0000{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                # sizes vary like real photos; colour and a shape tell the class
                size = (48 + 8 * i, 40 + 4 * label)
                image = Image.new("RGB", size, (80 * label, 200 - 60 * label, 30 * i))
                ImageDraw.Draw(image).ellipse((4, 4, size[0] // 2, size[1] // 2), fill=(255, 255 - 100 * label, 0))
                image.save(folder / f"img{i}.JPEG", quality=90)


@pytest.fixture(scope="session")
def imagenet_dir(tmp_path_factory):
    """An ImageFolder (train/, val/) and its two FFCV files, written once per session."""
    pytest.importorskip("ffcv")
    root = tmp_path_factory.mktemp("imagenet")
    make_image_folder(root)
    for split in ("train", "val"):
        done = anbench("data", "write-ffcv", "--src", root / split, "--out", root / f"{split}_64_0.50_90.ffcv",
                       "--max-res", "64", "--num-workers", "1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{PER_CLASS[split] * CLASSES} images, {CLASSES} classes" in done.stdout
    return root


@pytest.fixture
def on_imagenet(imagenet_dir, monkeypatch):
    monkeypatch.setenv("ANBENCH_IMAGENET_DIR", str(imagenet_dir))
    return imagenet_dir


class TestImageNetOnFFCVContract(DatasetContract):
    contract_max_samples = 6

    @pytest.fixture
    def dataset(self, on_imagenet):
        from anbench_datasets import ImageNetDataset

        return ImageNetDataset()


def _request(split, **changes):
    fields = dict(split=split, batch_size=4, resolution=32)
    fields.update(changes)
    return DataRequest(**fields)


def test_the_ffcv_loader_reads_the_written_files(on_imagenet):
    import torch
    from ffcv.loader import Loader

    from anbench_datasets import ImageNetDataset

    batches = ImageNetDataset().loader(_request("val"))
    assert isinstance(batches.inner, Loader)
    got = list(batches)
    images = torch.cat([b[0] for b in got])
    labels = torch.cat([b[1] for b in got])
    assert images.shape == (12, 3, 32, 32) and images.dtype == torch.float32
    assert sorted(labels.tolist()) == sorted(list(range(CLASSES)) * 4)
    assert -3 < float(images.mean()) < 3  # normalised with the ImageNet mean/std


def test_without_ffcv_the_imagefolder_fallback_reads_the_same_split(on_imagenet, monkeypatch, capsys):
    import torch

    from anbench_datasets import ImageNetDataset

    monkeypatch.setitem(sys.modules, "ffcv", None)  # as if ffcv were not installed
    dataset = ImageNetDataset()
    assert dataset.availability() is None
    dataset.check(None)
    assert capsys.readouterr().err.count("ffcv is not installed") == 1
    batches = dataset.loader(_request("train", max_samples=16, drop_last=True))
    assert isinstance(batches.inner, torch.utils.data.DataLoader) and len(batches) == 4
    images, labels = next(iter(batches))
    assert images.shape == (4, 3, 32, 32) and labels.dtype == torch.int64
    val = torch.cat([b[1] for b in dataset.loader(_request("val"))])
    assert sorted(val.tolist()) == sorted(list(range(CLASSES)) * 4)


@pytest.mark.slow
def test_an_imagefolder_written_to_ffcv_trains_one_epoch(imagenet_dir, tmp_path):
    done = anbench("--store", tmp_path / "s.db", "train", "--dataset", "imagenet", "--data-dir", imagenet_dir,
                   "--arch", "smallest", "--epochs", "1", "--set", "lr_peak_epoch=0.25", "--batch-size", "8", "--set", "val_batch_size=8",
                   "--set", "min_res=64", "--set", "max_res=64", "--set", "val_resolution=64", "--set", "num_workers=1",
                   "--runs-dir", tmp_path / "runs")
    assert done.returncode == 0, done.stdout + done.stderr
    from anbench.store import Store

    with Store.open(tmp_path / "s.db") as store:
        (record,) = store.results(stage="train")
    assert record.metrics["verdict"] == "VALID" and record.metrics["val_samples"] == CLASSES * PER_CLASS["val"]
    assert record.metrics["curves"][0]["resolution"] == 64 and record.settings["val_resolution"] == 64


def test_a_corrupt_ffcv_file_is_one_line_before_any_training(imagenet_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train_x.ffcv").write_bytes((imagenet_dir / "train_64_0.50_90.ffcv").read_bytes())
    (bad / "val_x.ffcv").write_bytes(b"this is not an ffcv file")
    done = anbench("--store", tmp_path / "s.db", "train", "--dataset", "imagenet", "--data-dir", bad, "--arch", "smallest",
                   "--runs-dir", tmp_path / "runs")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"error: {bad / 'val_x.ffcv'} is not a readable FFCV file (AssertionError)" \
        or "is not a readable FFCV file" in done.stderr
    assert not (tmp_path / "runs").exists()
    missing = anbench("--store", tmp_path / "s.db", "train", "--dataset", "imagenet", "--data-dir", tmp_path / "nowhere",
                      "--arch", "smallest")
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
