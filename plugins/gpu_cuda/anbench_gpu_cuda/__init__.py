"""anbench plugin ``gpu_cuda``: the ``cuda`` device runner and the ``cuda`` trainer.

PyTorch inference (or ``--mode train`` steps) on an NVIDIA GPU the way the Accel-NASBench
GPU measurements ran it: random-weight network in deploy mode, ``channels_last``, fp16
autocast or fp32, under ``torch.inference_mode``. ``run()`` synchronises the device before
it returns; ``timed_run()`` times a window with CUDA events and no host synchronisation
inside it. Options: CUDA graphs, ``torch.compile``, inputs staged on the device or copied
from pinned host memory per batch (end to end), all recorded. The environment block
(GPU name, driver, clocks, power, temperature) is taken before and after each measurement
through NVML or nvidia-smi; a GPU that reports thermal or power-brake slowdown makes the
measurement INVALID.

The runner takes any ``torch.device``: ``CudaDevice(device="cpu")`` runs the same code
path on the CPU (synchronisation is then a no-op), which is how it is tested on machines
without a GPU. Importing this module does not import torch.
"""

from __future__ import annotations

from anbench import hookimpl

from .runner import CudaDevice
from .trainer import CudaTrainer

__version__ = "0.1.0"
__all__ = ["CudaDevice", "CudaTrainer", "register_devices", "register_trainers"]


@hookimpl
def register_devices(register):
    register(CudaDevice())


@hookimpl
def register_trainers(register):
    register(CudaTrainer())
