"""The DPU placeholders: compiler vitis-ai and devices zcu102/vck190, honest availability,
no vendor SDK imported."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

import anbench_fpga_dpu
from anbench.errors import AnbenchError
from anbench.plugin_types import CompileRequest
from anbench.searchspace import named
from anbench.testing import CompilerContract, DeviceContract, register_test_plugin
from anbench_fpga_dpu import BOARDS, DpuDevice, VitisAiCompiler


def fake_find_spec(monkeypatch, present):
    real = importlib.util.find_spec
    vendor = {"pytorch_nndct", "vart", "xir"}
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (object() if name in present else None) if name in vendor else real(name, *a))


def test_registers_compiler_and_two_boards(anbench_host):
    register_test_plugin(anbench_host, anbench_fpga_dpu, name="fpga_dpu")
    assert not anbench_host.errors
    assert anbench_host.registry.compiler_for_target("zcu102").name == "vitis-ai"
    assert anbench_host.registry.compiler_for_target("vck190").name == "vitis-ai"
    assert {"zcu102", "vck190"} <= set(anbench_host.registry.items["devices"])
    assert anbench_host.infos["fpga_dpu"].hooks == ["register_compilers", "register_devices"]


def test_import_never_imports_vendor_sdks():
    code = ("import sys, anbench_fpga_dpu as p; p.VitisAiCompiler().availability(); "
            "[p.DpuDevice(b).availability() for b in p.BOARDS.values()]; "
            "print(sorted(m for m in ('torch', 'pytorch_nndct', 'xir', 'vart') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_compiler_availability_names_the_missing_tool(monkeypatch, tmp_path):
    fake_find_spec(monkeypatch, present=set())
    assert VitisAiCompiler().availability() == "pytorch_nndct (Vitis AI quantizer) is not installed"
    fake_find_spec(monkeypatch, present={"pytorch_nndct"})
    monkeypatch.setenv("PATH", str(tmp_path))
    assert VitisAiCompiler().availability() == "vai_c_xir not found on PATH"
    tool = tmp_path / "vai_c_xir"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert "arrives with the DPU issue" in VitisAiCompiler().availability()


def test_device_availability_names_vart(monkeypatch):
    fake_find_spec(monkeypatch, present=set())
    assert DpuDevice(BOARDS["zcu102"]).availability() == "vart is not installed (runs on the board image)"
    fake_find_spec(monkeypatch, present={"vart", "xir"})
    assert "arrives with the DPU issue" in DpuDevice(BOARDS["vck190"]).availability()


def test_compile_and_run_say_when_they_arrive(tmp_path):
    with pytest.raises(AnbenchError, match="arrives with the DPU issue"):
        VitisAiCompiler().compile(CompileRequest(named("smallest"), "zcu102", tmp_path))
    with pytest.raises(AnbenchError, match="arrives with the DPU issue"):
        DpuDevice(BOARDS["zcu102"]).prepare(None)


def test_describe_records_the_documented_targets():
    assert DpuDevice(BOARDS["zcu102"]).describe()["documented_dpu_target"] == "DPUCZDX8G_ISA1_B4096"
    assert DpuDevice(BOARDS["vck190"]).describe()["documented_dpu_target"] == "DPUCVDX8G_ISA3_C32B6"


class TestVitisAiCompilerContract(CompilerContract):
    @pytest.fixture
    def compiler(self):
        return VitisAiCompiler()


@pytest.fixture(params=sorted(BOARDS))
def board_name(request):
    return request.param


class TestDpuDeviceContract(DeviceContract):
    @pytest.fixture
    def device_runner(self, board_name):
        return DpuDevice(BOARDS[board_name])
