"""Small generated files in the exact original formats of the 1-D tasks (``anbench data make-sample``).

The content is synthetic (each class or target has its own pattern under noise),
deterministic for a seed, small enough to train on in seconds, and shaped like the real
data: ECG recordings are int16 signals of varying length at PhysioNet's scale (about 230
windows in all); Satellite series have 46 steps and labels 1..24; DeepSEA sequences are
one-hot ``N x 1000 x 4`` with 36 binary targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anbench.errors import AnbenchError

from . import seq_files

TASKS = ("ecg", "satellite", "deepsea")


def sample_ecg(rng: np.random.Generator, records: int = 48) -> tuple[list[np.ndarray], list[str]]:
    from .seq_data import ecg_record_split

    classes = [i % 4 for i in range(records)]
    _, test = ecg_record_split(records)
    for position, record in enumerate(test):  # every class in the test split, so each has an F1
        classes[record] = position % 4
    signals, labels = [], []
    for i in range(records):
        label = seq_files.ECG_CLASSES[classes[i]]
        # noise recordings ('~') are short, as their 25-sample stride makes many windows
        length = int(rng.integers(1100, 1300) if label == "~" else rng.integers(1100, 2000))
        t = np.arange(length) / 300.0  # PhysioNet 2017 is sampled at 300 Hz
        beat = 1.0 + 0.35 * "NAO~".index(label)  # beats per second differ by class
        signal = np.sin(2 * np.pi * beat * t) ** 15 * (1 + 0.3 * ("NAO~".index(label) == 2))
        signal += rng.normal(0, 0.15 + 0.4 * (label == "~"), length)
        signals.append(np.round(200 * signal).astype(np.int16))
        labels.append(label)
    return signals, labels


def sample_satellite(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(1, seq_files.SATELLITE_CLASSES + 1, n)
    steps = np.arange(seq_files.SATELLITE_LENGTH)
    phase = 2 * np.pi * (labels[:, None] - 1) / seq_files.SATELLITE_CLASSES
    cycles = 1 + (labels[:, None] - 1) % 3
    data = 3000 + 1500 * np.sin(2 * np.pi * cycles * steps / seq_files.SATELLITE_LENGTH + phase)
    data += rng.normal(0, 300, data.shape)
    return data.astype(np.float32), labels.astype(np.int64)


_MOTIF = 8


def sample_deepsea(rng: np.random.Generator, n: int, motifs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random DNA; target j is on when motif j was planted (about one sample in three)."""
    bases = rng.integers(0, 4, (n, seq_files.DEEPSEA_LENGTH))
    y = (rng.random((n, seq_files.DEEPSEA_TARGETS)) < 0.35).astype(np.uint8)
    for i in range(n):
        for j in np.flatnonzero(y[i]):
            start = int(rng.integers(0, seq_files.DEEPSEA_LENGTH - _MOTIF))
            bases[i, start:start + _MOTIF] = motifs[j]
    x = np.zeros((n, seq_files.DEEPSEA_LENGTH, 4), dtype=np.uint8)
    np.put_along_axis(x, bases[:, :, None], 1, axis=2)
    return x, y


def files_of(task: str) -> list[str]:
    return {"ecg": [seq_files.ECG_FILE], "satellite": list(seq_files.SATELLITE_FILES.values()),
            "deepsea": [seq_files.DEEPSEA_FILE]}[task]


def make_sample(task: str, out: Path, seed: int = 0, overwrite: bool = False) -> list[tuple[Path, str]]:
    """Write the sample files of ``task`` into ``out``; returns ``(path, what it holds)`` per file."""
    if task not in TASKS:
        raise AnbenchError(f"no sample data for '{task}'; choose one of {', '.join(TASKS)}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AnbenchError(f"--out {out} exists and is not a folder")
    existing = [name for name in files_of(task) if (out / name).exists()]
    if existing and not overwrite:
        raise AnbenchError(f"{out / existing[0]} exists; pass --overwrite to replace it")
    rng = np.random.default_rng([seed, TASKS.index(task)])
    try:
        out.mkdir(parents=True, exist_ok=True)
        return _write(task, out, rng)
    except OSError as exc:  # unwritable, read-only or missing parent (e.g. /proc/x)
        raise AnbenchError(f"cannot write the sample into {out}: {exc.strerror or exc}") from None


def _write(task: str, out: Path, rng: np.random.Generator) -> list[tuple[Path, str]]:
    if task == "ecg":
        signals, labels = sample_ecg(rng)
        return [(seq_files.write_ecg(out, signals, labels), f"{len(signals)} recordings")]
    if task == "satellite":
        written = []
        for split, n in (("train", 480), ("test", 120)):
            data, labels = sample_satellite(rng, n)
            written.append((seq_files.write_satellite(out, split, data, labels), f"{n} series"))
        return written
    motifs = rng.integers(0, 4, (seq_files.DEEPSEA_TARGETS, _MOTIF))
    x_train, y_train = sample_deepsea(rng, 128, motifs)
    x_test, y_test = sample_deepsea(rng, 32, motifs)
    path = seq_files.write_deepsea(out, {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test})
    return [(path, f"{len(x_train)} train and {len(x_test)} test sequences")]
