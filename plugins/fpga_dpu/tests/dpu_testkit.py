"""What the fpga_dpu tests share besides fixtures: where the fakes are, the fake board's
import blocker, and compiled fake xmodels made without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

FAKES = Path(__file__).with_name("fakes")
ARCH_JSONS = {
    "DPUCZDX8G/ZCU102": "DPUCZDX8G_ISA1_B4096",
    "DPUCVDX8G/VCK190": "DPUCVDX8G_ISA3_C32B6",
    "DPUCAHX8H/U50": "DPUCAHX8H_ISA2",
}
# on the fake board: the Vitis AI runtime is there, anbench and torch are not
BOARD_SITECUSTOMIZE = '''
import sys
class _NotOnTheBoard:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("anbench", "torch", "pytorch_nndct"):
            raise ImportError(f"No module named {name!r} (not on the board image)", name=name)
        return None
sys.meta_path.insert(0, _NotOnTheBoard())
'''


@dataclass
class Vitis:
    arch_root: Path
    bin_dir: Path

    def arch_json(self, sub: str) -> Path:
        return self.arch_root / sub / "arch.json"


def write_vitis_tree(root: Path) -> Vitis:
    """arch.json files and a ``vai_c_xir`` executable (the fake compiler) under ``root``."""
    for sub, target in ARCH_JSONS.items():
        (root / "arch" / sub).mkdir(parents=True, exist_ok=True)
        (root / "arch" / sub / "arch.json").write_text(f'{{"target": "{target}"}}\n')
    bin_dir = root / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / "vai_c_xir"
    tool.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKES / "vai_c_xir.py"}" "$@"\n')
    tool.chmod(0o755)
    return Vitis(root / "arch", bin_dir)


def make_xmodel(folder: Path, target: str = "DPUCZDX8G_ISA1_B4096", hard_sigmoids: int = 0) -> Path:
    """A compiled fake xmodel, made by the fake vai_c_xir from a hand-written quantized one (no torch)."""
    folder.mkdir(parents=True, exist_ok=True)
    quantized = folder / "AccelNet_int.xmodel"
    quantized.write_text(json.dumps({"format": "fake-xmodel/1", "graph": "AccelNet", "stage": "quantized",
                                     "input_dims": [1, 224, 224, 3], "output_classes": 1000,
                                     "ops": {"hard-sigmoid": hard_sigmoids}}))
    (folder / "arch.json").write_text(json.dumps({"target": target}))
    proc = subprocess.run([sys.executable, str(FAKES / "vai_c_xir.py"), "-x", str(quantized), "-a",
                           str(folder / "arch.json"), "-o", str(folder / "out"), "-n", "net"],
                          capture_output=True, text=True, check=True)
    assert "DPU subgraph number" in proc.stdout
    return folder / "out" / "net.xmodel"
