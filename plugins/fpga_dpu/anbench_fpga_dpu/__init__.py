"""anbench plugin ``fpga_dpu``: Vitis AI for Xilinx DPUs.

Registers the compiler ``vitis-ai`` (targets ``zcu102`` and ``vck190``: quantize with
``pytorch_nndct``, compile with ``vai_c_xir``) and the device runners ``zcu102`` and
``vck190`` (VART on the board).

Status: registration, availability and provenance facts only. ``compile``, ``prepare``
and ``run`` raise :class:`~anbench.errors.AnbenchError` explaining that they arrive with
the DPU issue. No vendor SDK (pytorch_nndct, xir, vart) is imported at import time, nor
anywhere yet: availability asks ``importlib.util.find_spec`` and ``shutil.which``.
"""

from __future__ import annotations

from anbench import hookimpl

from .boards import BOARDS, DpuDevice, VitisAiCompiler

__version__ = "0.1.0"
__all__ = ["BOARDS", "DpuDevice", "VitisAiCompiler", "register_compilers", "register_devices"]


@hookimpl
def register_compilers(register):
    register(VitisAiCompiler())


@hookimpl
def register_devices(register):
    for board in BOARDS.values():
        register(DpuDevice(board))
