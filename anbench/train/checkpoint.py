"""Epoch checkpoints: one file per model, replaced atomically after every epoch.

A killed process leaves the previous epoch's file or the new one, never a torn file
(temp file, fsync, rename). The file holds everything needed to continue exactly:
weights, optimizer and scaler state, finished epochs, curves, elapsed seconds and RNG state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import AnbenchError

FILENAME = "checkpoint.pt"


def path_in(run_dir: Path) -> Path:
    return Path(run_dir) / FILENAME


def save(run_dir: Path, state: dict[str, Any]) -> Path:
    import torch

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = path_in(run_dir)
    tmp = target.with_name(f".{FILENAME}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return target


def load(run_dir: Path) -> dict[str, Any] | None:
    """The saved state, or None when there is none. A corrupt file is an AnbenchError."""
    import torch

    target = path_in(run_dir)
    if not target.is_file():
        return None
    try:
        return torch.load(target, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for a damaged zip/pickle
        raise AnbenchError(f"checkpoint {target} is unreadable ({type(exc).__name__}); "
                           f"delete it to retrain that model from scratch") from None


def strip_ddp(state_dict: dict[str, Any]) -> dict[str, Any]:
    """State-dict keys without DDP's ``module.`` prefix (checkpoints load into a bare model)."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}
