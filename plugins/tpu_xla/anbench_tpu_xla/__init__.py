"""anbench plugin ``tpu_xla``: the ``tpu`` device runner.

One XLA device (one TPU core, as the original measured), bf16 by default, batch 64 on
TPUv2 and 128 on TPUv3+. Each step is cut by ``torch_xla.sync()``, each timed window ends
with ``xm.wait_device_ops()`` (so execution is timed, not tracing), and a window during
which XLA compiled is discarded. torch_xla needs its own torch build: it is installed in
its own environment (``make test-xla`` makes one and runs the tests on PJRT CPU).

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
