"""anbench plugin ``tpu_xla``: the ``tpu`` device runner.

Status: registration and availability only. ``prepare``/``run`` raise
:class:`~anbench.errors.AnbenchError` ("the tpu device runner arrives with the TPU issue")
until that issue lands; the runner will then time ``torch_xla.sync()`` steps closed by
``xm.wait_device_ops()`` and reject windows in which XLA compiled.

torch_xla is never imported when this module is imported: availability asks
``importlib.util.find_spec`` only.
"""

from __future__ import annotations

from anbench import hookimpl

from .runner import TpuDevice

__version__ = "0.1.0"
__all__ = ["TpuDevice", "register_devices"]


@hookimpl
def register_devices(register):
    register(TpuDevice())
