"""The DPU target table: which arch.json the compiler uses and what each DPU can run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Where the Vitis AI 2.5/3.0 docker keeps the arch.json files (spec D.3); the variable lets a
# site (or a test) point elsewhere without editing the table.
ARCH_ROOT_ENV = "ANBENCH_VAI_ARCH_ROOT"
DEFAULT_ARCH_ROOT = "/opt/vitis_ai/compiler/arch"


@dataclass(frozen=True)
class Board:
    """One compile target. ``documented_target`` is what the stock images say; the DPU
    target recorded with a result comes from the compiler's ``meta.json`` and the board."""

    name: str
    arch_subpath: str  # under the arch root, e.g. "DPUCZDX8G/ZCU102/arch.json"
    documented_target: str
    description: str
    hard_sigmoid: bool = True  # False: squeeze-excite gates fall back to the CPU
    default_threads: int = 4  # throughput threads of the original procedure

    @property
    def arch_json(self) -> str:
        return str(Path(os.environ.get(ARCH_ROOT_ENV, DEFAULT_ARCH_ROOT)) / self.arch_subpath)


TARGETS = {b.name: b for b in (
    Board("zcu102", "DPUCZDX8G/ZCU102/arch.json", "DPUCZDX8G_ISA1_B4096",
          "Xilinx Zynq UltraScale+ MPSoC ZCU102 (DPUCZDX8G)", default_threads=5),
    Board("vck190", "DPUCVDX8G/VCK190/arch.json", "DPUCVDX8G_ISA3_C32B6",
          "Xilinx Versal AI Core VCK190 (DPUCVDX8G)", default_threads=6),
    Board("zcu104", "DPUCZDX8G/ZCU104/arch.json", "DPUCZDX8G_ISA1_B4096",
          "Xilinx Zynq UltraScale+ MPSoC ZCU104 (DPUCZDX8G)"),
    Board("kv260", "DPUCZDX8G/KV260/arch.json", "DPUCZDX8G_ISA1_B3136",
          "Xilinx Kria KV260 (DPUCZDX8G; hard-sigmoid since Vitis AI 2.5)"),
    Board("vck5000", "DPUCVDX8H/VCK50008PE/arch.json", "DPUCVDX8H_ISA1_F2W4_8PE",
          "Xilinx VCK5000 (DPUCVDX8H, 8 PE)"),
    Board("u50", "DPUCAHX8H/U50/arch.json", "DPUCAHX8H_ISA2", "Xilinx Alveo U50 (DPUCAHX8H)", hard_sigmoid=False),
    Board("u250", "DPUCADF8H/U250/arch.json", "DPUCADF8H_ISA0", "Xilinx Alveo U250 (DPUCADF8H)", hard_sigmoid=False),
    Board("u280", "DPUCAHX8H/U280/arch.json", "DPUCAHX8H_ISA2", "Xilinx Alveo U280 (DPUCAHX8H)", hard_sigmoid=False),
)}

# the boards measured by the original pipeline get device runners
BOARDS = {name: TARGETS[name] for name in ("zcu102", "vck190")}


def se_refusal(arch, board: Board) -> str | None:
    """Why ``board`` cannot run ``arch`` (squeeze-excite on a DPU without hard-sigmoid), else None."""
    if board.hard_sigmoid or not any(block.se for block in arch.blocks()):
        return None
    return (f"the {board.name} DPU has no hard-sigmoid, so squeeze-excite architectures like {arch.id} would fall "
            f"back to the CPU; sample SE-free ones with `anbench sample --no-se`")
