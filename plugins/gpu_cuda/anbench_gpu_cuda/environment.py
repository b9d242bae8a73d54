"""The GPU's environment block: name, driver, CUDA, clocks, power, temperature, throttling.

Asked through NVML (``pynvml``, imported lazily, optional) or else ``nvidia-smi``; with
neither, the block is empty and nothing is judged. :class:`GpuMonitor` takes the block
before and after a measurement (the engine's ``HostMonitor`` protocol) and reports clock
throttling that the GPU itself says happened.

A GPU is named by its UUID (``GPU-...``, :func:`cuda_gpu_id`), never by the CUDA ordinal:
``CUDA_VISIBLE_DEVICES`` renumbers the CUDA devices and CUDA orders them fastest first,
while NVML and nvidia-smi number every GPU by PCI bus, so ordinal 0 can be another GPU.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, Callable

QUERY_FIELDS = ("name", "driver_version", "clocks.sm", "clocks.mem", "clocks.max.sm", "power.draw", "power.limit",
                "temperature.gpu", "clocks_throttle_reasons.active")
KEYS = ("gpu_name", "driver", "sm_clock_mhz", "mem_clock_mhz", "max_sm_clock_mhz", "power_w", "power_limit_w",
        "temperature_c", "throttle_reasons")
# NVML clocks-event reason bits that mean the clock was pulled down by heat or a power brake;
# SW power cap (0x4) is normal operation at full load and idle (0x1) is no slowdown at all.
THROTTLE_BITS = {0x8: "hardware slowdown", 0x20: "software thermal slowdown", 0x40: "hardware thermal slowdown",
                 0x80: "hardware power brake"}


def _number(text: str) -> float | str | None:
    text = text.strip()
    if text in ("", "[N/A]", "N/A", "[Not Supported]"):
        return None
    try:
        return int(text, 16) if text.startswith("0x") else float(text)
    except ValueError:
        return text


def nvml_id(uuid: Any) -> str | None:
    """NVML's and nvidia-smi's name of a GPU from torch's UUID (``GPU-`` prefixed); None for None."""
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def cuda_gpu_id(index: int) -> str | None:
    """The UUID name (``GPU-...``) of the GPU that torch calls CUDA device ``index``."""
    import torch

    return nvml_id(getattr(torch.cuda.get_device_properties(index), "uuid", None))


def query_nvidia_smi(gpu_id: str | None, run: Callable[..., Any] = subprocess.run) -> dict[str, Any]:
    """The block of GPU ``gpu_id`` (its UUID name) from ``nvidia-smi --query-gpu=...``; {} when absent."""
    exe = shutil.which("nvidia-smi")
    if exe is None or not gpu_id:
        return {}
    try:
        out = run([exe, f"--id={gpu_id}", f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader,nounits"],
                  capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0 or not out.stdout.strip():
        return {}
    values = [v.strip() for v in out.stdout.strip().splitlines()[0].split(",")]
    if len(values) != len(KEYS):
        return {}
    block = {key: _number(value) for key, value in zip(KEYS, values)}
    block["gpu_name"], block["driver"] = values[0], values[1]
    block["source"] = "nvidia-smi"
    return block


def query_nvml(gpu_id: str | None) -> dict[str, Any]:
    if not gpu_id:
        return {}
    try:
        import pynvml  # optional (nvidia-ml-py)
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: no block, not an error
        return {}
    try:
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(gpu_id)
        except Exception:  # a GPU NVML does not know (a MIG slice on an old driver): no block
            return {}

        def text(value):
            return value.decode() if isinstance(value, bytes) else value

        def ask(fn, *args, scale=1.0):
            try:
                value = fn(handle, *args)
            except Exception:  # a query this GPU does not support loses one fact
                return None
            return value / scale if scale != 1.0 else value

        return {
            "gpu_name": text(pynvml.nvmlDeviceGetName(handle)),
            "driver": text(pynvml.nvmlSystemGetDriverVersion()),
            "sm_clock_mhz": ask(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_SM),
            "mem_clock_mhz": ask(pynvml.nvmlDeviceGetClockInfo, pynvml.NVML_CLOCK_MEM),
            "max_sm_clock_mhz": ask(pynvml.nvmlDeviceGetMaxClockInfo, pynvml.NVML_CLOCK_SM),
            "power_w": ask(pynvml.nvmlDeviceGetPowerUsage, scale=1000.0),
            "power_limit_w": ask(pynvml.nvmlDeviceGetEnforcedPowerLimit, scale=1000.0),
            "temperature_c": ask(pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU),
            "throttle_reasons": ask(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons),
            "source": "nvml",
        }
    finally:
        pynvml.nvmlShutdown()


def gpu_environment(gpu_id: str | None) -> dict[str, Any]:
    """The block of GPU ``gpu_id`` (see :func:`cuda_gpu_id`); {} when nothing answers."""
    return query_nvml(gpu_id) or query_nvidia_smi(gpu_id)


def throttling(block: dict[str, Any]) -> list[str]:
    bits = block.get("throttle_reasons")
    if not isinstance(bits, (int, float)):
        return []
    return [name for bit, name in THROTTLE_BITS.items() if int(bits) & bit]


class GpuMonitor:
    """The GPU's block before and after a measurement; throttling after it makes it INVALID."""

    def __init__(self, gpu_id: str | None, query: Callable[[str | None], dict] = gpu_environment) -> None:
        self.gpu_id, self.query = gpu_id, query
        self.before: dict[str, Any] = {}

    def start(self) -> None:
        self.before = self.query(self.gpu_id)

    def finish(self) -> tuple[dict[str, Any], list[str]]:
        after = self.query(self.gpu_id)
        reasons = []
        slow = throttling(after)
        if slow:
            reasons.append(f"clock throttling: the GPU reports {', '.join(slow)} "
                           f"(SM clock {after.get('sm_clock_mhz')} MHz, {after.get('temperature_c')} C)")
        return {"gpu_before": self.before, "gpu_after": after}, reasons
