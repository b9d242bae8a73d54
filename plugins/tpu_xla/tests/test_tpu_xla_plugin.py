"""The tpu device without torch_xla: registered, honest about what is missing, never imports torch_xla.

The real runner on PJRT CPU is tested in test_tpu_xla_real.py (``make test-xla``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import anbench_tpu_xla
from anbench.errors import AnbenchError
from anbench.searchspace import named
from anbench.plugin_types import MeasureRequest
from anbench.testing import DeviceContract, register_test_plugin
from anbench_tpu_xla import TpuDevice
from anbench_tpu_xla.runner import tpu_generation


def test_registers_tpu(anbench_host):
    register_test_plugin(anbench_host, anbench_tpu_xla, name="tpu_xla")
    assert not anbench_host.errors
    assert isinstance(anbench_host.registry.device("tpu"), TpuDevice)


def test_import_and_availability_never_import_torch_xla():
    code = ("import sys, anbench_tpu_xla; d = anbench_tpu_xla.TpuDevice(); d.availability(); d.describe(); "
            "d.default_batch_size; d.fixed_schedule(64); "
            "print(sorted(m for m in ('torch', 'torch_xla') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_availability_without_torch_xla(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch_xla" else real(name, *a))
    runner = TpuDevice()
    assert runner.availability().startswith("torch_xla is not installed")
    with pytest.raises(AnbenchError, match="torch_xla is not installed"):
        runner.prepare(MeasureRequest(named("smallest"), 2))


@pytest.mark.parametrize("env, generation, batch", [
    ({"TPU_ACCELERATOR_TYPE": "v2-8"}, 2, 64),
    ({"TPU_ACCELERATOR_TYPE": "v3-8"}, 3, 128),
    ({"ACCELERATOR_TYPE": "v4-8"}, 4, 128),
    ({}, None, 128),
])
def test_default_batch_follows_the_tpu_generation(monkeypatch, env, generation, batch):
    for var in ("TPU_ACCELERATOR_TYPE", "ACCELERATOR_TYPE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert tpu_generation() == generation
    assert TpuDevice().default_batch_size == batch


def test_defaults_are_the_original_procedure():
    runner = TpuDevice()
    assert runner.default_precision == "bf16"
    assert runner.fixed_schedule(128) == {"warmup_batches": 300, "repeats": 4, "batches_per_repeat": 50}
    assert runner.describe()["cores_used"] == 1


class TestTpuContract(DeviceContract):
    @pytest.fixture
    def device_runner(self):
        return TpuDevice()
