"""The tpu device placeholder: registered, honest about what is missing, never imports torch_xla."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import anbench_tpu_xla
from anbench.errors import AnbenchError
from anbench.testing import DeviceContract, register_test_plugin
from anbench_tpu_xla import TpuDevice


def test_registers_tpu(anbench_host):
    register_test_plugin(anbench_host, anbench_tpu_xla, name="tpu_xla")
    assert not anbench_host.errors
    assert isinstance(anbench_host.registry.device("tpu"), TpuDevice)


def test_import_and_availability_never_import_torch_xla():
    code = ("import sys, anbench_tpu_xla; d = anbench_tpu_xla.TpuDevice(); d.availability(); d.describe(); "
            "print(sorted(m for m in ('torch', 'torch_xla') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_availability_without_torch_xla(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch_xla" else real(name, *a))
    assert TpuDevice().availability() == "torch_xla is not installed"


def test_with_torch_xla_it_still_says_it_is_not_implemented(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "torch_xla" else real(name, *a))
    assert "arrives with the TPU issue" in TpuDevice().availability()


def test_prepare_and_run_say_when_they_arrive():
    with pytest.raises(AnbenchError, match="arrives with the TPU issue"):
        TpuDevice().prepare(None)
    with pytest.raises(AnbenchError, match="arrives with the TPU issue"):
        TpuDevice().run(None, 1)


class TestTpuContract(DeviceContract):
    @pytest.fixture
    def device_runner(self):
        return TpuDevice()
