"""anbench plugin ``fpga_dpu``: Vitis AI for Xilinx DPUs.

Registers the compiler ``vitis-ai`` (targets zcu102, vck190, zcu104, kv260, vck5000 and
the Alveo u50/u250/u280, which refuse squeeze-excite: quantize with ``pytorch_nndct``,
compile with ``vai_c_xir``) and the device runners ``zcu102`` and ``vck190`` (VART on
the board, reached over SSH or run on the board itself).

No vendor SDK (pytorch_nndct, xir, vart) and no torch is imported at import time:
availability asks ``importlib.util.find_spec`` and ``shutil.which``; the SDKs are
imported by the functions that use them.
"""

from __future__ import annotations

from anbench import hookimpl

from .boards import BOARDS, TARGETS
from .compiler import VitisAiCompiler
from .device import DpuDevice

__version__ = "0.1.0"
__all__ = ["BOARDS", "TARGETS", "DpuDevice", "VitisAiCompiler", "register_compilers", "register_devices"]


@hookimpl
def register_compilers(register):
    register(VitisAiCompiler())


@hookimpl
def register_devices(register):
    for board in BOARDS.values():
        register(DpuDevice(board))
