"""Side files for finished results that could not be stored, and taking them back.

Contract: :func:`write_pending` writes one JSON file (format ``anbench-pending-result/1``)
holding the architecture, its origin and the whole result, atomically, into
``<store>.pending/`` beside the store (falling back to the working directory, then the
temp directory, when that cannot be written) and returns its path. :func:`import_pending`
stores every such file of a path (a file or a folder) and returns how many results were
new; a file whose result is stored already adds nothing. Side files are never deleted
by anbench: the user removes them once the store has them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from .errors import AnbenchError
from .searchspace import Architecture
from .store import StageResult, Store

FORMAT = "anbench-pending-result/1"


def _candidates(store_path: Path) -> list[Path]:
    return [Path(f"{store_path}.pending"), Path.cwd() / "anbench-pending", Path(tempfile.gettempdir()) / "anbench-pending"]


def write_pending(store_path: Path, arch: Architecture, origin: dict, result: StageResult, error: str) -> Path:
    from .export import write_atomic

    payload = {
        "format": FORMAT,
        "store": str(store_path),
        "error": error,
        "architecture": arch.to_record(),
        "origin": origin,
        "result": {
            "arch_id": result.arch_id, "stage": result.stage, "target": result.target, "run": result.run,
            "settings": result.settings, "metrics": result.metrics, "provenance": result.provenance,
            "source": result.source, "created_at": result.created_at,
        },
    }
    try:
        text = json.dumps(payload, indent=1, allow_nan=False)
    except ValueError:  # keep the result rather than lose it: NaN written as null is still readable
        text = json.dumps(_finite_or_none(payload), indent=1)
    last: Exception | None = None
    for folder in _candidates(Path(store_path)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{result.stage}-{result.target}-{result.key[:16]}.json"
            write_atomic(path, text)
            return path
        except (OSError, AnbenchError) as exc:
            last = exc
    raise AnbenchError(f"cannot store the result of {arch.id} nor write a side file: {last}")


def _finite_or_none(value: Any) -> Any:
    """``value`` with NaN/Infinity (e.g. a diverged loss) as None: side files are strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _load(path: Path) -> tuple[Architecture, dict, StageResult]:
    from .record_files import read_json_record

    try:
        # the same hostile-file checks as an import: file type, size, nesting, finite numbers
        data = read_json_record(path, os.path.realpath(path.parent))
    except AnbenchError as exc:
        why = str(exc).partition(": ")[2]  # read_json_record says "<name>: <why>"
        raise AnbenchError(f"{path}: not a readable pending-result file ({why})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AnbenchError(f"{path}: not an anbench pending-result file (format {FORMAT})")
    try:
        arch = Architecture.from_record(data["architecture"])
        r: dict[str, Any] = data["result"]
        result = StageResult(r["arch_id"], r["stage"], r["target"], r["settings"], r["metrics"], r["provenance"],
                             r.get("source", "anbench"), r.get("created_at", ""), r.get("run", ""))
    except (KeyError, TypeError) as exc:
        raise AnbenchError(f"{path}: pending-result file lacks {exc}") from None
    if not isinstance(result.metrics, dict):
        raise AnbenchError(f"{path}: the result's metrics are not an object")
    for key, value in result.metrics.items():
        # as the importer: a mean is a positive number (a negative throughput is no measurement)
        if key.endswith("_mean") and value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                                            or value <= 0):
            raise AnbenchError(f"{path}: metrics.{key} must be a number > 0, got {value!r}")
    if result.arch_id != arch.id:
        raise AnbenchError(f"{path}: result belongs to {result.arch_id}, not to the file's architecture {arch.id}")
    return arch, data.get("origin") or {}, result


def import_pending(store: Store, path: str | os.PathLike) -> tuple[int, int]:
    """Store the results of ``path`` (a side file or a folder of them): (new, already stored)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise AnbenchError(f"no pending-result files (*.json) in {path}")
    elif path.is_file():
        files = [path]
    else:
        raise AnbenchError(f"{path} does not exist")
    loaded = [_load(p) for p in files]  # every file checked before anything is written
    new = 0
    with store.transaction():
        for arch, origin, result in loaded:
            store.add_architecture(arch, origin=origin)
            new += store.add_result(result)
    return new, len(loaded) - new
