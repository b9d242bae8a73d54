"""Dataset descriptions, availability checks, and the 1-D tasks' trainer interface.

Nothing here imports NumPy or torch at import time; the 1-D datasets' loaders, metrics and
models import them when called (see :mod:`anbench_datasets.seq_data`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


class _FolderDataset:
    """A dataset whose files live in the folder named by the environment variable ``env_var``.

    ``required`` lists, per needed file, the glob patterns any one of which satisfies it.
    """

    name: str
    summary: str
    task: str
    num_classes: int
    input_shape: tuple[int, ...]
    env_var: str
    required: tuple[tuple[str, ...], ...]
    needs_module: tuple[str, str] | None = None  # (importable module, pip name)

    def data_dir(self) -> Path | None:
        value = os.environ.get(self.env_var, "").strip()
        return Path(value).expanduser() if value else None

    def folder(self, data_dir: str | Path | None = None) -> Path:
        """``data_dir`` (``--data-dir`` or the config) if given, else the folder named by ``env_var``."""
        from anbench.errors import AnbenchError

        folder = Path(data_dir).expanduser() if data_dir else self.data_dir()
        if folder is None:
            raise AnbenchError(f"dataset {self.name}: pass --data-dir or set {self.env_var} to the folder with "
                               f"{self._wanted()}")
        if not folder.is_dir():
            raise AnbenchError(f"dataset {self.name}: {folder} is not a folder (expected one with {self._wanted()})")
        return folder

    def _wanted(self) -> str:
        return " and ".join(" or ".join(patterns) for patterns in self.required)

    def availability(self) -> str | None:
        if self.needs_module and importlib.util.find_spec(self.needs_module[0]) is None:
            return f"{self.needs_module[1]} is not installed"
        folder = self.data_dir()
        if folder is None or not folder.is_dir():
            where = f" ({folder} is not a folder)" if folder is not None else ""
            return f"set {self.env_var} to the folder with {self._wanted()}{where}"
        missing = [" or ".join(patterns) for patterns in self.required
                   if not any(any(folder.glob(pattern)) for pattern in patterns)]
        if missing:
            return f"{self.env_var}={folder} has no {' and no '.join(missing)}"
        return None


class ImageNetDataset(_FolderDataset):
    """ImageNet-1k read with FFCV (``train*.ffcv``/``val*.ffcv``), or without ffcv from
    ``train/`` and ``val/`` ImageFolders through a Pillow DataLoader (see :mod:`.imagenet`)."""

    name = "imagenet"
    metric_name = "top1"
    summary = "ImageNet-1k from FFCV files (train/val .ffcv or .beton), 1000 classes; ImageFolder fallback"
    task = "image2d"
    num_classes = 1000
    input_shape = (3, 224, 224)
    env_var = "ANBENCH_IMAGENET_DIR"
    required = (("train*.ffcv", "train*.beton"), ("val*.ffcv", "val*.beton"))
    streamable_metrics = True  # top-1/top-5 are per-sample means: reduced batch by batch

    def _folder(self, data_dir: Path | None) -> Path | None:
        return Path(data_dir).expanduser() if data_dir is not None else self.data_dir()

    def _fallback_ready(self, folder: Path | None) -> bool:
        from .imagenet import image_folder

        return folder is not None and folder.is_dir() and all(image_folder(folder, s) for s in ("train", "val"))

    def availability(self) -> str | None:
        folder = self.data_dir()
        if importlib.util.find_spec("ffcv") is None:
            if self._fallback_ready(folder):
                return None  # slow, but it trains: check() says so once
            return "ffcv is not installed"
        if folder is None or not folder.is_dir():
            return f"set {self.env_var} to the folder with the train/val .ffcv files"
        if self._fallback_ready(folder):
            return None
        return super().availability()

    def check(self, data_dir: Path | None) -> None:
        """Open what the loaders will read (FFCV headers, ImageFolder listings) or raise one line."""
        from anbench.errors import AnbenchError

        from .imagenet import ffcv_file, ffcv_samples, folder_samples, image_folder, say_once

        folder = self._folder(data_dir)
        if folder is None or not folder.is_dir():
            where = f"{folder} is not a folder" if folder is not None else f"set {self.env_var} or give --data-dir"
            raise AnbenchError(f"imagenet: {where}")
        files = {s: ffcv_file(folder, s) for s in ("train", "val")}
        if importlib.util.find_spec("ffcv") is not None and all(files.values()):
            for path in files.values():
                ffcv_samples(path)
            return
        if all(image_folder(folder, s) for s in ("train", "val")):
            if importlib.util.find_spec("ffcv") is None:
                say_once("imagenet: ffcv is not installed; reading the ImageFolders with Pillow (much slower)")
            for split in ("train", "val"):
                folder_samples(folder / split)
            return
        missing = [f"{s}*.ffcv" for s, path in files.items() if path is None]
        if importlib.util.find_spec("ffcv") is None:
            raise AnbenchError(f"imagenet: ffcv is not installed and {folder} has no train/ and val/ ImageFolders")
        raise AnbenchError(f"imagenet: {folder} has no {' and no '.join(missing)} (nor train/ and val/ ImageFolders)")

    def loader(self, request):
        from .imagenet import ffcv_file, ffcv_loader, folder_loader

        folder = self._folder(request.data_dir)
        if folder is None:
            from anbench.errors import AnbenchError

            raise AnbenchError(f"imagenet: set {self.env_var} or give --data-dir")
        path = ffcv_file(folder, request.split)
        if path is not None and importlib.util.find_spec("ffcv") is not None:
            return ffcv_loader(path, request)
        return folder_loader(folder / request.split, request)

    def evaluate(self, outputs, targets, groups=None) -> dict[str, float]:
        from anbench.train.metrics import topk_accuracy

        return topk_accuracy(outputs, targets)


class _SequenceDataset(_FolderDataset):
    """A NAS-Bench-360 1-D task: the :class:`anbench.plugin_types.Dataset` trainer interface.

    * ``loader(request)``: batches of ``train``, ``val`` or ``test`` (``val`` reads the test
      split: these tasks ship no validation split), see :mod:`anbench_datasets.seq_data`;
    * ``evaluate(outputs, targets, groups)``: the task metrics over a whole split, holding
      ``metric_name`` (see :mod:`anbench_datasets.seq_metrics`);
    * ``build_model(arch, ...)``: the 1-D AccelNet for this task's input (spec 2.7);
    * ``costs(arch)``: its params and MACs on this task's own ``1 x C x L`` input;
    * ``canonical_arch(arch)``: the 1-D representative that a result is stored against;
    * ``recipe`` (spec 9.2, whole) and ``recipe_defaults`` (the knobs shared with images);
    * ``check(data_dir)``: read and validate the files, one-line error if they are not right.
    """

    task = "seq1d"
    stem_stride = 1
    multilabel = False
    streamable_metrics = False
    metric_name: str
    #: the split ``val`` reads, recorded with the metric
    eval_split = "test"

    @property
    def recipe(self) -> dict:
        from .seq_recipes import recipe

        return recipe(self.name)

    @property
    def recipe_defaults(self) -> dict:
        from .seq_recipes import shared_knobs

        return shared_knobs(self.name)

    def shape(self):
        from anbench.seq1d import Seq1dShape

        return Seq1dShape.of(self)

    def loader(self, request):
        from .seq_data import make_loader

        return make_loader(self.name, self.folder(request.data_dir), request)

    def check(self, data_dir: str | Path | None = None) -> None:
        from .seq_data import LOADERS

        folder = self.folder(data_dir)
        for split in ("train", "test"):
            LOADERS[self.name](folder, split)

    def build_model(self, arch, activation: str = "relu", mode: str = "train", **kwargs):
        from anbench.models.seq1d import build_seq1d_model

        return build_seq1d_model(arch, self.shape(), activation=activation, mode=mode, **kwargs)

    def costs(self, arch):
        """Params and MACs of this task's network for ``arch`` on its own ``1 x C x L`` input."""
        from anbench.costs import count_costs_1d

        return count_costs_1d(arch, self.shape())

    def canonical_arch(self, arch):
        """The 1-D representative of ``arch`` (what the network reads; stored with the result)."""
        from anbench.seq1d import to_seq1d

        return to_seq1d(arch)


class EcgDataset(_SequenceDataset):
    name = "ecg"
    summary = "PhysioNet/CinC 2017 ECG windows of 1000 samples, 4 classes, record-level macro F1 (NAS-Bench-360)"
    num_classes = 4
    input_shape = (1, 1000)
    stem_stride = 2
    metric_name = "macro_f1"
    env_var = "ANBENCH_ECG_DIR"
    required = (("challenge2017.pkl",),)

    def evaluate(self, outputs, targets, groups=None) -> dict[str, float]:
        from anbench.errors import AnbenchError

        from .seq_metrics import record_macro_f1

        if groups is None:
            raise AnbenchError("ecg: evaluating needs the recording id of every window (the loader's third item)")
        return record_macro_f1(outputs, targets, groups, self.num_classes)


class SatelliteDataset(_SequenceDataset):
    name = "satellite"
    summary = "satellite image time series, 46 steps, 24 classes, top-1 (NAS-Bench-360)"
    num_classes = 24
    input_shape = (1, 46)
    metric_name = "top1"
    streamable_metrics = True
    env_var = "ANBENCH_SATELLITE_DIR"
    required = (("satellite_train.npy", "satellite_train.beton"), ("satellite_test.npy", "satellite_test.beton"))

    def evaluate(self, outputs, targets, groups=None) -> dict[str, float]:
        from anbench.train.metrics import topk_accuracy

        return topk_accuracy(outputs, targets)


class DeepSeaDataset(_SequenceDataset):
    name = "deepsea"
    summary = "DeepSEA one-hot DNA, 4x1000, 36 binary chromatin-profile outputs, mean AUROC (NAS-Bench-360)"
    num_classes = 36  # outputs of a multi-label task, not exclusive classes
    multilabel = True
    input_shape = (4, 1000)
    metric_name = "mean_auroc"
    env_var = "ANBENCH_DEEPSEA_DIR"
    required = (("deepsea_filtered.npz",),)

    def evaluate(self, outputs, targets, groups=None) -> dict[str, float]:
        from .seq_metrics import multilabel_auc

        return multilabel_auc(outputs, targets)


DATASETS = (ImageNetDataset, EcgDataset, SatelliteDataset, DeepSeaDataset)
