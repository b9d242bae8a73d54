"""Is a Vitis AI tool here, and if not, one line saying what is missing and where it comes from.

Asks ``importlib.util.find_spec`` and ``shutil.which`` only: importing pytorch_nndct, xir
or vart to answer would be slow, and unsafe on a machine where they are half installed.
"""

from __future__ import annotations

import importlib.util
import shutil

DOCKER = "the Vitis AI docker's `vitis-ai-pytorch` conda environment"
BOARD_IMAGE = "the Vitis AI board image (PetaLinux/Vitis AI runtime)"


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def compiler_missing() -> str | None:
    """None when quantize and compile can run here."""
    if _missing("pytorch_nndct"):
        return f"pytorch_nndct (vai_q_pytorch, the Vitis AI quantizer) is not installed; it comes with {DOCKER}"
    if shutil.which("vai_c_xir") is None:
        return f"vai_c_xir (the Vitis AI compiler) is not on PATH; it comes with {DOCKER}"
    return None


def runtime_missing() -> str | None:
    """None when xir, vart and numpy import here (anbench runs on the board)."""
    for module in ("xir", "vart"):
        if _missing(module):
            return f"{module} is not installed here; it comes with {BOARD_IMAGE}"
    if _missing("numpy"):
        return "numpy is not installed here"
    return None


def ssh_missing() -> str | None:
    """None when the OpenSSH client tools are on PATH."""
    for tool in ("ssh", "scp"):
        if shutil.which(tool) is None:
            return f"{tool} is not on PATH; install the OpenSSH client (Debian: openssh-client)"
    return None
