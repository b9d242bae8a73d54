"""The ``tpu`` device runner (a placeholder that says so; see the package docstring)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from anbench.errors import AnbenchError

NOT_YET = "the tpu device runner arrives with the TPU issue"


def _installed_version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


class TpuDevice:
    """Device runner ``tpu`` (torch_xla on PJRT).

    Not implemented yet: :meth:`prepare` and :meth:`run` raise
    :class:`~anbench.errors.AnbenchError`, and :meth:`availability` never answers
    ``None``, so ``anbench plugins``/``doctor`` show why.
    """

    name = "tpu"
    summary = "PyTorch/XLA inference on a Cloud TPU through PJRT (not implemented yet)"

    def availability(self) -> str | None:
        if importlib.util.find_spec("torch_xla") is None:
            return "torch_xla is not installed"
        return f"torch_xla is installed, but {NOT_YET}"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "tpu",
            "torch_xla": _installed_version("torch-xla"),
            "pjrt_device": os.environ.get("PJRT_DEVICE"),
            "implemented": False,
        }

    def prepare(self, request) -> Any:
        raise AnbenchError(NOT_YET)

    def run(self, prepared: Any, batches: int) -> None:
        raise AnbenchError(NOT_YET)

    def release(self, prepared: Any) -> None:
        """Nothing to free: :meth:`prepare` never hands out a handle yet."""
