"""The NAS-Bench-360 files of the 1-D tasks, read and written in their original formats (spec 9.1).

=========  ========================  ==========================================================
task       file                      layout
=========  ========================  ==========================================================
ecg        ``challenge2017.pkl``     pickle of a dict: ``data`` = one 1-D signal per recording
                                     (a NumPy object array or a list; any real dtype, any
                                     length), ``label`` = one of ``'N' 'A' 'O' '~'`` each
satellite  ``satellite_train.npy``,  ``np.save`` of a dict: ``data`` = N x 46 real array,
           ``satellite_test.npy``    ``label`` = N integers 1..24
           (or ``.beton``)           FFCV files with fields ``covariate`` (46 floats) and
                                     ``label`` (int 0..23), read when the .npy is absent
deepsea    ``deepsea_filtered.npz``  arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``:
                                     x = N x 1000 x 4 one-hot DNA, y = N x 36 binary targets
=========  ========================  ==========================================================

Readers accept any writer's files with that layout, and reject anything else with one
line naming the file and the expected format. Pickled content is unpickled with an
allow-list (NumPy arrays, lists, dicts, strings, numbers): a data file can not run code.
The writers produce small files of the same layout (``anbench data make-sample``).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anbench.errors import AnbenchError

ECG_FILE = "challenge2017.pkl"
SATELLITE_FILES = {"train": "satellite_train.npy", "test": "satellite_test.npy"}
DEEPSEA_FILE = "deepsea_filtered.npz"

ECG_CLASSES = ("N", "A", "O", "~")
SATELLITE_LENGTH = 46
SATELLITE_CLASSES = 24
DEEPSEA_LENGTH = 1000
DEEPSEA_TARGETS = 36

ECG_FORMAT = ("a pickle of a dict with 'data' (one 1-D signal per recording) and 'label' "
              "(one of 'N', 'A', 'O', '~' per recording)")
SATELLITE_FORMAT = (f"a .npy holding a dict with 'data' (N x {SATELLITE_LENGTH} numbers) and 'label' "
                    f"(N integers 1..{SATELLITE_CLASSES})")
SATELLITE_BETON_FILES = {"train": "satellite_train.beton", "test": "satellite_test.beton"}
SATELLITE_BETON_FORMAT = (f"an FFCV .beton with fields 'covariate' ({SATELLITE_LENGTH} floats per series) and "
                          f"'label' (int 0..{SATELLITE_CLASSES - 1})")
DEEPSEA_FORMAT = (f"an .npz with x_train, y_train, x_test, y_test (x: N x {DEEPSEA_LENGTH} x 4 one-hot, "
                  f"y: N x {DEEPSEA_TARGETS} binary)")


def _bad(path: Path, fmt: str, why: str) -> AnbenchError:
    return AnbenchError(f"{path}: {why}; expected {fmt}")


def _require(path: Path, fmt: str) -> None:
    if not path.is_file():
        raise _bad(path, fmt, "not found" if not path.exists() else "not a regular file")


# --- restricted unpickling ---------------------------------------------------------------

_NUMPY_MODULES = ("numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric")
_NUMPY_NAMES = ("_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer", "array")
_BUILTINS = ("list", "dict", "tuple", "str", "int", "float", "bytes", "bytearray", "complex", "set", "frozenset")


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            return super().find_class(module, name)
        if module == "numpy.dtypes":
            return super().find_class(module, name)  # numpy 2 may pickle dtype classes by name
        if module == "builtins" and name in _BUILTINS:
            return super().find_class(module, name)
        if module == "collections" and name == "OrderedDict":
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} (not plain data)")


def _unpickle(stream, path: Path, fmt: str) -> Any:
    try:
        return _DataUnpickler(stream).load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError,
            MemoryError, UnicodeDecodeError) as exc:
        raise _bad(path, fmt, f"cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from None


def _load_npy_dict(path: Path, fmt: str) -> dict:
    """An ``np.save``-d dict (a 0-d object array), unpickled with the allow-list."""
    _require(path, fmt)
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(f)
        except (ValueError, OSError, SyntaxError) as exc:
            raise _bad(path, fmt, f"is not a .npy file ({' '.join(str(exc).split())[:120]})") from None
        if dtype != object or shape != ():
            raise _bad(path, fmt, f"holds a {dtype} array of shape {shape}, not a dict")
        content = _unpickle(f, path, fmt)
    if isinstance(content, np.ndarray) and content.shape == () and content.dtype == object:
        content = content.item()
    if not isinstance(content, dict):
        raise _bad(path, fmt, f"holds a {type(content).__name__}, not a dict")
    return content


def _keys(content: dict, keys: tuple[str, ...], path: Path, fmt: str) -> None:
    missing = [k for k in keys if k not in content]
    if missing:
        raise _bad(path, fmt, f"has no '{missing[0]}'")


def _real_array(value: Any, path: Path, fmt: str, what: str, ndim: int) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise _bad(path, fmt, f"'{what}' is not an array ({exc})") from None
    if array.ndim != ndim or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise _bad(path, fmt, f"'{what}' is a {array.dtype} array of shape {array.shape}, not {ndim}-D numbers")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise _bad(path, fmt, f"'{what}' holds complex numbers")
    return array


def _finite(array: np.ndarray, path: Path, fmt: str, what: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise _bad(path, fmt, f"'{what}' holds NaN or infinite values")


# --- ECG -----------------------------------------------------------------------------------


@dataclass
class EcgRecords:
    """Raw recordings (as stored, not yet normalised) and their class indices (N 0, A 1, O 2, ~ 3)."""

    signals: list[np.ndarray]
    labels: np.ndarray


def read_ecg(folder: Path) -> EcgRecords:
    path = Path(folder) / ECG_FILE
    _require(path, ECG_FORMAT)
    with open(path, "rb") as f:
        content = _unpickle(f, path, ECG_FORMAT)
    if not isinstance(content, dict):
        raise _bad(path, ECG_FORMAT, f"holds a {type(content).__name__}, not a dict")
    _keys(content, ("data", "label"), path, ECG_FORMAT)
    data, labels = content["data"], content["label"]
    if isinstance(data, np.ndarray) and data.dtype != object and data.ndim == 2:
        data = list(data)  # equal-length recordings saved as one 2-D array
    if not isinstance(data, (list, tuple, np.ndarray)) or np.ndim(labels) != 1:
        raise _bad(path, ECG_FORMAT, "'data' and 'label' must be sequences")
    if len(data) != len(labels):
        raise _bad(path, ECG_FORMAT, f"'data' has {len(data)} recordings but 'label' {len(labels)}")
    if len(data) == 0:
        raise _bad(path, ECG_FORMAT, "holds no recordings")
    signals = []
    for i, signal in enumerate(data):
        array = _real_array(signal, path, ECG_FORMAT, f"data[{i}]", 1)
        _finite(array, path, ECG_FORMAT, f"data[{i}]")
        signals.append(array)
    codes = {name: index for index, name in enumerate(ECG_CLASSES)}
    indices = np.empty(len(labels), dtype=np.int64)
    for i, label in enumerate(labels):
        label = label.decode() if isinstance(label, bytes) else label
        if not isinstance(label, str) or label not in codes:
            raise _bad(path, ECG_FORMAT, f"label[{i}] is {label!r}")
        indices[i] = codes[label]
    return EcgRecords(signals, indices)


def write_ecg(folder: Path, signals: list[np.ndarray], labels: list[str]) -> Path:
    """Write ``challenge2017.pkl`` as the PhysioNet preprocessing does: object arrays of signals and labels."""
    data = np.empty(len(signals), dtype=object)
    data[:] = [np.asarray(s) for s in signals]
    label = np.array(list(labels), dtype=object)
    path = Path(folder) / ECG_FILE
    with open(path, "wb") as f:
        pickle.dump({"data": data, "label": label}, f, protocol=4)
    return path


# --- Satellite -------------------------------------------------------------------------------


def read_satellite(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(data N x 46 float32, labels 0..23 int64)`` of ``split`` ("train" or "test")."""
    path = Path(folder) / SATELLITE_FILES[split]
    content = _load_npy_dict(path, SATELLITE_FORMAT)
    _keys(content, ("data", "label"), path, SATELLITE_FORMAT)
    data = _real_array(content["data"], path, SATELLITE_FORMAT, "data", 2)
    labels = _real_array(content["label"], path, SATELLITE_FORMAT, "label", 1)
    if data.shape[1] != SATELLITE_LENGTH:
        raise _bad(path, SATELLITE_FORMAT, f"'data' has {data.shape[1]} steps per series, not {SATELLITE_LENGTH}")
    if len(labels) != len(data) or len(data) == 0:
        raise _bad(path, SATELLITE_FORMAT, f"'data' has {len(data)} series but 'label' {len(labels)}")
    _finite(data, path, SATELLITE_FORMAT, "data")
    if not (np.issubdtype(labels.dtype, np.integer) or np.all(np.mod(labels, 1) == 0)) \
            or labels.min() < 1 or labels.max() > SATELLITE_CLASSES:
        raise _bad(path, SATELLITE_FORMAT, f"'label' holds values outside 1..{SATELLITE_CLASSES}")
    return data.astype(np.float32), labels.astype(np.int64) - 1


def read_satellite_beton(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(data N x 46 float32, labels 0..23 int64)`` from the FFCV file of ``split``.

    The original trained on these files without re-normalising or shifting labels, so their
    labels are taken as 0-based [INFERRED: the beton writer is not in the original repository].
    """
    path = Path(folder) / SATELLITE_BETON_FILES[split]
    _require(path, SATELLITE_BETON_FORMAT)
    try:
        from ffcv.fields.decoders import IntDecoder, NDArrayDecoder
        from ffcv.loader import Loader, OrderOption
        from ffcv.reader import Reader
    except ImportError:
        raise _bad(path, SATELLITE_BETON_FORMAT, "needs ffcv to be read (pip install 'anbench-datasets[ffcv]'), "
                                                 "or put satellite_*.npy beside it") from None
    try:
        fields = set(Reader(str(path)).handlers)
    except Exception as exc:  # FFCV raises assorted errors on a file it cannot parse
        raise _bad(path, SATELLITE_BETON_FORMAT, f"cannot be read ({type(exc).__name__})") from None
    if not {"covariate", "label"} <= fields:
        raise _bad(path, SATELLITE_BETON_FORMAT, f"has fields {', '.join(sorted(fields)) or 'none'}")
    loader = Loader(str(path), batch_size=4096, num_workers=1, order=OrderOption.SEQUENTIAL, drop_last=False,
                    pipelines={"covariate": [NDArrayDecoder()], "label": [IntDecoder()]})
    parts = [(np.array(x), np.array(y)) for x, y in loader]
    data = np.concatenate([p[0].reshape(len(p[0]), -1) for p in parts]) if parts else np.zeros((0, 0))
    labels = np.concatenate([p[1].reshape(-1) for p in parts]) if parts else np.zeros(0)
    if data.ndim != 2 or data.shape[1] != SATELLITE_LENGTH or len(data) == 0:
        raise _bad(path, SATELLITE_BETON_FORMAT, f"holds covariates of shape {data.shape[1:]}")
    _finite(data, path, SATELLITE_BETON_FORMAT, "covariate")
    if labels.min() < 0 or labels.max() >= SATELLITE_CLASSES:
        raise _bad(path, SATELLITE_BETON_FORMAT, f"'label' holds values outside 0..{SATELLITE_CLASSES - 1}")
    return data.astype(np.float32), labels.astype(np.int64)


def write_satellite(folder: Path, split: str, data: np.ndarray, labels: np.ndarray) -> Path:
    """``np.save`` of ``{'data': N x 46, 'label': 1..24}``, the raw-loader layout."""
    path = Path(folder) / SATELLITE_FILES[split]
    with open(path, "wb") as f:
        np.save(f, {"data": np.asarray(data), "label": np.asarray(labels)}, allow_pickle=True)
    return path


# --- DeepSEA ---------------------------------------------------------------------------------


def read_deepsea(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x N x 1000 x 4 as stored, y N x 36)`` of ``split``; x keeps its compact dtype (callers permute per batch)."""
    path = Path(folder) / DEEPSEA_FILE
    _require(path, DEEPSEA_FORMAT)
    x_key, y_key = f"x_{split}", f"y_{split}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in (x_key, y_key) if k not in npz.files]
            if missing:
                raise _bad(path, DEEPSEA_FORMAT, f"has no array '{missing[0]}' (it has {', '.join(npz.files) or 'none'})")
            x, y = npz[x_key], npz[y_key]
    except AnbenchError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise _bad(path, DEEPSEA_FORMAT, f"cannot be read ({' '.join(str(exc).split())[:120]})") from None
    x = _real_array(x, path, DEEPSEA_FORMAT, x_key, 3)
    y = _real_array(y, path, DEEPSEA_FORMAT, y_key, 2)
    if x.shape[1:] != (DEEPSEA_LENGTH, 4):
        raise _bad(path, DEEPSEA_FORMAT, f"'{x_key}' has shape {x.shape}, not N x {DEEPSEA_LENGTH} x 4")
    if y.shape[1] != DEEPSEA_TARGETS or len(y) != len(x) or len(x) == 0:
        raise _bad(path, DEEPSEA_FORMAT, f"'{y_key}' has shape {y.shape} for {len(x)} sequences")
    _finite(x, path, DEEPSEA_FORMAT, x_key)
    if not np.isin(y, (0, 1)).all():
        raise _bad(path, DEEPSEA_FORMAT, f"'{y_key}' holds values other than 0 and 1")
    return x, y


def write_deepsea(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez_compressed`` with ``x_train, y_train, x_test, y_test``."""
    path = Path(folder) / DEEPSEA_FILE
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.write_bytes(buffer.getvalue())
    return path
