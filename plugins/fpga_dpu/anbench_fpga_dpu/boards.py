"""The two DPU boards, the Vitis AI compiler and the DPU device runners (placeholders)."""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from typing import Any

from anbench.errors import AnbenchError

COMPILE_NOT_YET = "Vitis AI quantize/compile arrives with the DPU issue"
RUN_NOT_YET = "the DPU device runner arrives with the DPU issue"


@dataclass(frozen=True)
class Board:
    """What the stock Vitis AI 2.5/3.0 images say about a board (verify on the board:
    the DPU target recorded with a result must come from the compiled ``meta.json``)."""

    name: str
    arch_json: str
    documented_target: str
    description: str


BOARDS = {
    "zcu102": Board("zcu102", "/opt/vitis_ai/compiler/arch/DPUCZDX8G/ZCU102/arch.json",
                    "DPUCZDX8G_ISA1_B4096", "Xilinx Zynq UltraScale+ MPSoC ZCU102 (DPUCZDX8G)"),
    "vck190": Board("vck190", "/opt/vitis_ai/compiler/arch/DPUCVDX8G/VCK190/arch.json",
                    "DPUCVDX8G_ISA3_C32B6", "Xilinx Versal AI Core VCK190 (DPUCVDX8G)"),
}


def _missing_module(module: str) -> bool:
    return importlib.util.find_spec(module) is None


class VitisAiCompiler:
    """Compiler ``vitis-ai``: int8 post-training quantization (vai_q_pytorch) then
    ``vai_c_xir`` for the board's DPU. Not implemented yet: :meth:`compile` raises
    :class:`~anbench.errors.AnbenchError`."""

    name = "vitis-ai"
    summary = "Vitis AI int8 quantization (pytorch_nndct) and vai_c_xir compilation for Xilinx DPUs"
    targets = tuple(BOARDS)

    def availability(self) -> str | None:
        if _missing_module("pytorch_nndct"):
            return "pytorch_nndct (Vitis AI quantizer) is not installed"
        if shutil.which("vai_c_xir") is None:
            return "vai_c_xir not found on PATH"
        return f"the Vitis AI tools are here, but {COMPILE_NOT_YET}"

    def compile(self, request) -> Any:
        raise AnbenchError(COMPILE_NOT_YET)


class DpuDevice:
    """Device runner for one DPU board (VART ``execute_async``/``wait`` on the board).
    Not implemented yet: :meth:`prepare` and :meth:`run` raise
    :class:`~anbench.errors.AnbenchError`."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.name = board.name
        self.summary = f"int8 inference on the DPU of a {board.description} through VART (not implemented yet)"

    def availability(self) -> str | None:
        if _missing_module("vart"):
            return "vart is not installed (runs on the board image)"
        if _missing_module("xir"):
            return "xir is not installed (runs on the board image)"
        return f"vart is here, but {RUN_NOT_YET}"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "dpu",
            "board": self.board.name,
            "documented_dpu_target": self.board.documented_target,
            "arch_json": self.board.arch_json,
            "implemented": False,
        }

    def prepare(self, request) -> Any:
        raise AnbenchError(RUN_NOT_YET)

    def run(self, prepared: Any, batches: int) -> None:
        raise AnbenchError(RUN_NOT_YET)

    def release(self, prepared: Any) -> None:
        """Nothing to free: :meth:`prepare` never hands out a handle yet."""
