"""Splits and batches of the 1-D tasks, from the files of :mod:`anbench_datasets.seq_files`.

Splits (spec 9.1): ``train`` and ``test`` as the original pipeline made them (ECG: 10 % of
the recordings held out with the split of ``train_test_split(test_size=0.1,
random_state=0)``; Satellite and DeepSEA: their own train/test files). The tasks ship no
validation split, so ``val`` -- the split a trainer evaluates -- reads ``test``; trainers
report the final epoch's value, so the test split never selects anything.

Preprocessing: ECG per-recording z-score, then windows of 1000 samples with class
strides N 500, A 83, O 250, ~ 25 (starts 0, stride, ... while start < len - 1000), test
windows carrying their recording's index in the pickle; Satellite per-series z-score over
the 46 steps (also for the FFCV files, read when the .npy files are absent: normalising an
already normalised series changes nothing); DeepSEA ``N x 1000 x 4`` permuted to
``N x 4 x 1000`` per batch.

Loaded splits are cached per process (keyed by file, size and mtime), so every epoch's
loader reuses them. ECG windows are (recording, start) pairs cut out of one flat float32
array per batch, never materialised as a windows x 1000 matrix.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from anbench.errors import AnbenchError

from . import seq_files

ECG_WINDOW = 1000
ECG_STRIDE = 500
# class index -> window stride (N, A, O, ~), the original's stride, stride // 6, // 2, // 20
ECG_STRIDES = (ECG_STRIDE, ECG_STRIDE // 6, ECG_STRIDE // 2, ECG_STRIDE // 20)
ECG_TEST_FRACTION = 0.1
ECG_SPLIT_SEED = 0
SPLITS = ("train", "val", "test")


def resolve_split(task: str, split: str) -> str:
    if split not in SPLITS:
        raise AnbenchError(f"dataset {task} has splits {', '.join(SPLITS)}, not '{split}'")
    return "test" if split == "val" else split


@dataclass
class Split:
    """One split: ``size`` samples; ``fetch(ids)`` returns a batch tuple of tensors for sample ids."""

    size: int
    fetch: Callable[[np.ndarray], tuple[Any, ...]]


_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_CACHE_ENTRIES = 4  # e.g. one task's parsed file and its train and test splits


def _stamp(paths: list[Path]) -> tuple:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
            out.append((str(path.resolve()), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(path), None, None))
    return tuple(out)


def cached(what: str, files: list[Path], build: Callable[[], Any]) -> Any:
    """``build()``, reused while ``files`` keep their size and mtime; the least recently used entry goes first."""
    key = (what, _stamp(files))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = build()
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_ENTRIES:
        _CACHE.popitem(last=False)
    return value


# --- ECG ---------------------------------------------------------------------------------------


def ecg_record_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) recording indices, in the order ``train_test_split(test_size=0.1, random_state=0)`` returns them."""
    n_test = math.ceil(ECG_TEST_FRACTION * n)
    permutation = np.random.RandomState(ECG_SPLIT_SEED).permutation(n)
    return permutation[n_test:], permutation[:n_test]


def zscore(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """(x - mean) / std (population std); a constant series becomes zeros instead of NaN."""
    if values.size == 0:
        return values.astype(np.float64)
    mean = values.mean(axis=axis, keepdims=axis is not None)
    std = values.std(axis=axis, keepdims=axis is not None)
    return (values - mean) / np.where(std > 0, std, 1.0)


def ecg_windows(lengths: np.ndarray, labels: np.ndarray, records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recording index, start) of every window of ``records``, recording by recording, in time order."""
    rec_ids, starts = [], []
    for r in records:
        s = np.arange(0, lengths[r] - ECG_WINDOW, ECG_STRIDES[labels[r]], dtype=np.int64)
        rec_ids.append(np.full(len(s), r, dtype=np.int64))
        starts.append(s)
    if not rec_ids:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rec_ids), np.concatenate(starts)


@dataclass
class _EcgPrepared:
    flat: Any  # every normalised recording, concatenated (float32 tensor)
    offsets: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray


def _prepare_ecg(folder: Path) -> _EcgPrepared:
    import torch

    records = seq_files.read_ecg(folder)
    lengths = np.array([len(s) for s in records.signals], dtype=np.int64)
    flat = np.empty(int(lengths.sum()), dtype=np.float32)
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    for signal, offset in zip(records.signals, offsets):  # float64 maths one recording at a time
        flat[offset:offset + len(signal)] = zscore(signal.astype(np.float64))
    return _EcgPrepared(torch.from_numpy(flat), offsets, lengths, records.labels)


def load_ecg(folder: Path, split: str) -> Split:
    path = folder / seq_files.ECG_FILE

    def build() -> Split:
        import torch

        prepared = cached("ecg", [path], lambda: _prepare_ecg(folder))
        lengths, offsets, flat_t = prepared.lengths, prepared.offsets, prepared.flat
        train, test = ecg_record_split(len(lengths))
        rec_ids, starts = ecg_windows(lengths, prepared.labels, train if split == "train" else test)
        if len(rec_ids) == 0:
            raise AnbenchError(f"{path}: the {split} split has no recording longer than {ECG_WINDOW} samples; "
                               f"expected {seq_files.ECG_FORMAT}")
        labels = torch.from_numpy(prepared.labels)
        span = np.arange(ECG_WINDOW, dtype=np.int64)

        def fetch(ids: np.ndarray) -> tuple[Any, ...]:
            positions = torch.from_numpy((offsets[rec_ids[ids]] + starts[ids])[:, None] + span)
            windows = flat_t[positions].unsqueeze(1)
            recs = torch.from_numpy(rec_ids[ids])
            return (windows, labels[recs]) if split == "train" else (windows, labels[recs], recs)

        return Split(len(rec_ids), fetch)

    return cached(f"ecg-{split}", [path], build)


# --- Satellite -----------------------------------------------------------------------------------


def load_satellite(folder: Path, split: str) -> Split:
    path = folder / seq_files.SATELLITE_FILES[split]
    beton = folder / seq_files.SATELLITE_BETON_FILES[split]
    use_beton = not path.exists() and beton.exists()

    def build() -> Split:
        import torch

        read = seq_files.read_satellite_beton if use_beton else seq_files.read_satellite
        data, labels = read(folder, split)
        series = torch.from_numpy(zscore(data.astype(np.float64), axis=1).astype(np.float32)).unsqueeze(1)
        targets = torch.from_numpy(labels)

        def fetch(ids: np.ndarray) -> tuple[Any, ...]:
            index = torch.from_numpy(ids)
            return series[index], targets[index]

        return Split(len(labels), fetch)

    return cached(f"satellite-{split}", [beton if use_beton else path], build)


# --- DeepSEA --------------------------------------------------------------------------------------


def load_deepsea(folder: Path, split: str) -> Split:
    path = folder / seq_files.DEEPSEA_FILE

    def build() -> Split:
        import torch

        x, y = seq_files.read_deepsea(folder, split)
        x_t = torch.from_numpy(np.ascontiguousarray(x))
        y_t = torch.from_numpy(y.astype(np.float32))

        def fetch(ids: np.ndarray) -> tuple[Any, ...]:
            index = torch.from_numpy(ids)
            return x_t[index].permute(0, 2, 1).float().contiguous(), y_t[index]

        return Split(len(y), fetch)

    return cached(f"deepsea-{split}", [path], build)


# --- batching -------------------------------------------------------------------------------------


def shard(size: int, request) -> np.ndarray:
    """This rank's sample ids, following :class:`anbench.plugin_types.DataRequest`.

    Train: the epoch's permutation (seeded by ``(seed, epoch)``), cut into ``world_size``
    equal disjoint parts. Otherwise: contiguous, disjoint parts covering every sample once
    in file order, so gathering the ranks' outputs in rank order restores the split's order.
    """
    n = size if request.max_samples is None else min(size, request.max_samples)
    world, rank = max(1, request.world_size), request.rank
    if request.split == "train":
        order = np.random.default_rng([request.seed, request.epoch]).permutation(n)
        per_rank = n // world
        return order[rank * per_rank:(rank + 1) * per_rank]
    bounds = np.linspace(0, n, world + 1).round().astype(np.int64)
    return np.arange(bounds[rank], bounds[rank + 1], dtype=np.int64)


class BatchLoader:
    """One pass over ``ids`` in batches of ``batch_size``; ``len()`` is the number of batches.

    ``drop_last`` drops a last partial batch but never the only one: a split smaller than
    one batch (a sample file, ``max_samples``) still trains, in one smaller batch.
    """

    def __init__(self, split: Split, ids: np.ndarray, batch_size: int, drop_last: bool) -> None:
        if batch_size < 1:
            raise AnbenchError(f"batch size must be at least 1, got {batch_size}")
        self.split, self.ids, self.batch_size, self.drop_last = split, ids, batch_size, drop_last

    def __len__(self) -> int:
        n, b = len(self.ids), self.batch_size
        return max(n // b, 1 if n else 0) if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        b = self.batch_size
        for start in range(0, len(self) * b, b):
            yield self.split.fetch(self.ids[start:start + b])


LOADERS = {"ecg": load_ecg, "satellite": load_satellite, "deepsea": load_deepsea}


def make_loader(task: str, folder: Path, request) -> BatchLoader:
    split = resolve_split(task, request.split)
    data = LOADERS[task](folder, split)
    ids = shard(data.size, request)
    return BatchLoader(data, ids, request.batch_size, request.drop_last)
