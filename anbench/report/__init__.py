"""``anbench report``: the figures a NAS researcher looks at, from the store.

Contract of :func:`write_report`: reads the store (see :mod:`.data`), computes the numbers
(:mod:`.analysis`), writes every figure as PNG and PDF (:mod:`.figures`), ``report.json``
(the same numbers ``--format json`` prints) and ``index.html`` (:mod:`.html`, self-contained)
into ``out_dir``, each file atomically. An empty store is one :class:`AnbenchError`; missing
data elsewhere gives panels that say what is missing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import AnbenchError


@dataclass
class ReportSummary:
    out_dir: Path
    index: Path
    figures: list  # list[figures.Figure]
    numbers: dict[str, Any]


def report_numbers(store, devices: Iterable[str] | None = None, dataset: str | None = None) -> dict[str, Any]:
    """The report's numbers only (no matplotlib): Pareto sets, correlations, counts."""
    from .analysis import analyse
    from .data import gather

    return analyse(gather(store, devices, dataset))


def _prepare(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise AnbenchError(f"--out {out_dir} exists and is not a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AnbenchError(f"cannot create --out directory {out_dir}: {exc.strerror or exc}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise AnbenchError(f"--out directory {out_dir} is not writable")


def write_report(store, out_dir: str | os.PathLike, devices: Iterable[str] | None = None,
                 dataset: str | None = None) -> ReportSummary:
    from ..export import write_atomic
    from .analysis import analyse
    from .data import gather
    from .figures import draw_all
    from .html import render

    data = gather(store, devices, dataset)
    numbers = analyse(data)
    out_dir = Path(out_dir)
    _prepare(out_dir)
    try:
        figures = draw_all(data, numbers, out_dir)
    except OSError as exc:
        raise AnbenchError(f"cannot write figures into {out_dir}: {exc.strerror or exc}") from None
    numbers["figures"] = [f"{f.name}.png" for f in figures]
    index = out_dir / "index.html"
    # write_atomic gives the files the umask's mode, like the figures beside them
    write_atomic(out_dir / "report.json", json.dumps(numbers, indent=1))
    write_atomic(index, render(numbers, figures, out_dir))
    return ReportSummary(out_dir, index, figures, numbers)
