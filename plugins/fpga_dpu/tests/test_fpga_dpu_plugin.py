"""Registration, honest availability (what is missing and where it comes from), device
options, the contract suites; no vendor SDK imported by the plugin itself."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from dpu_testkit import make_xmodel

import anbench_fpga_dpu
from anbench.errors import AnbenchError
from anbench.testing import CompilerContract, DeviceContract, register_test_plugin
from anbench_fpga_dpu import BOARDS, TARGETS, DpuDevice, VitisAiCompiler


def test_registers_compiler_and_two_boards(anbench_host):
    register_test_plugin(anbench_host, anbench_fpga_dpu, name="fpga_dpu")
    assert not anbench_host.errors
    for target in ("zcu102", "vck190", "zcu104", "kv260", "vck5000", "u50", "u250", "u280"):
        assert anbench_host.registry.compiler_for_target(target).name == "vitis-ai"
    assert {"zcu102", "vck190"} <= set(anbench_host.registry.items["devices"])
    assert anbench_host.infos["fpga_dpu"].hooks == ["register_compilers", "register_devices"]


def test_import_never_imports_vendor_sdks_or_torch():
    code = ("import sys, anbench_fpga_dpu as p; p.VitisAiCompiler().availability(); "
            "[p.DpuDevice(b).availability() for b in p.BOARDS.values()]; "
            "print(sorted(m for m in ('torch', 'pytorch_nndct', 'xir', 'vart', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_vitis_ai_each_tool_says_what_is_missing_and_where_it_comes_from(monkeypatch, tmp_path):
    assert VitisAiCompiler().availability() == (
        "pytorch_nndct (vai_q_pytorch, the Vitis AI quantizer) is not installed; it comes with the Vitis AI "
        "docker's `vitis-ai-pytorch` conda environment")
    reason = DpuDevice(BOARDS["zcu102"]).availability()
    assert reason.startswith("xir is not installed here; it comes with the Vitis AI board image")
    assert reason.endswith("to measure a board from this machine give --host USER@BOARD")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert DpuDevice(BOARDS["zcu102"], {"host": "root@board"}).availability() == (
        "ssh is not on PATH; install the OpenSSH client (Debian: openssh-client)")


def test_quantizer_without_compiler_names_vai_c_xir(vitis, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert VitisAiCompiler().availability().startswith("vai_c_xir (the Vitis AI compiler) is not on PATH")


def test_cli_without_vitis_ai_one_line_and_listings(run_cli):
    result = run_cli("compile", "--target", "zcu102", "--arch", "efficientnet-b0")
    assert result.exit_code == 2
    assert result.output == ("error: compiler 'vitis-ai' for target 'zcu102' is not available here: pytorch_nndct "
                             "(vai_q_pytorch, the Vitis AI quantizer) is not installed; it comes with the Vitis AI "
                             "docker's `vitis-ai-pytorch` conda environment\n")
    listing = {p["name"]: p for p in json.loads(run_cli("plugins", "--format", "json").output)}["fpga_dpu"]
    assert "vitis-ai-pytorch" in listing["availability"]["compilers"]["vitis-ai"]
    assert "Vitis AI board image" in listing["availability"]["devices"]["zcu102"]
    assert set(listing["provides"]["targets"]) >= {"zcu102", "vck190", "u50"}
    table = run_cli("plugins").output
    assert "compiler vitis-ai (unavailable: pytorch_nndct" in table
    assert "target zcu102 (unavailable: pytorch_nndct" in table
    assert listing["availability"]["targets"]["vck190"] == listing["availability"]["compilers"]["vitis-ai"]
    assert "device vck190 (unavailable: xir is not installed here" in table
    doctor = json.loads(run_cli("doctor", "--format", "json").output)
    assert "vitis-ai-pytorch" in doctor["availability"]["compilers"]["vitis-ai"]


def test_with_the_fakes_everything_is_available(vitis):
    assert VitisAiCompiler().availability() is None
    assert DpuDevice(BOARDS["vck190"]).availability() is None


@pytest.mark.parametrize("options, message", [
    ({"identity": "/k"}, "--identity needs --host"),
    ({"host": "root@b", "on_board": True}, "not both"),
    ({"host": "root@b;rm"}, "must be USER@HOST"),
    ({"host": "root@b:70000"}, "port must be"),
    ({"threads": "many"}, "threads='many'"),
    ({"budget_s": "0"}, "budget_s='0'"),
    ({"budget_s": "nan"}, "budget_s='nan'"),
    ({"budget_s": "inf"}, "budget_s='inf'"),
    ({"colour": "red"}, "has no option(s) colour"),
])
def test_device_options_are_checked(options, message):
    with pytest.raises(AnbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DpuDevice(BOARDS["zcu102"]).with_options(options)


def test_devices_without_options_refuse_them(run_cli):
    result = run_cli("measure", "--device", "cpu", "--arch", "smallest", "--host", "root@board")
    assert result.exit_code == 2 and "takes no device options" in result.output


def test_describe_records_the_documented_target_and_how_the_board_is_reached():
    facts = DpuDevice(BOARDS["vck190"]).with_options({"host": "root@board:2222"}).describe()
    assert facts["documented_dpu_target"] == "DPUCVDX8G_ISA3_C32B6"
    assert facts["reached"] == "ssh" and facts["host"] == "root@board"
    assert DpuDevice(BOARDS["zcu102"]).describe()["documented_dpu_target"] == "DPUCZDX8G_ISA1_B4096"
    assert TARGETS["u50"].hard_sigmoid is False and TARGETS["zcu102"].hard_sigmoid is True


class TestVitisAiCompilerContract(CompilerContract):
    @pytest.fixture
    def compiler(self):
        return VitisAiCompiler()


@pytest.fixture(params=sorted(BOARDS))
def board_name(request):
    return request.param


class TestDpuDeviceContract(DeviceContract):
    """Unconfigured (no fakes): every check of an unavailable device."""

    @pytest.fixture
    def device_runner(self, board_name):
        return DpuDevice(BOARDS[board_name])


class TestDpuDeviceOnTheFakeBoard(DeviceContract):
    """On the board (the fakes importable): the timing checks too, on a compiled xmodel."""

    contract_precision = "int8"

    @pytest.fixture(autouse=True)
    def _xmodel(self, vitis, tmp_path):
        self.xmodel = make_xmodel(tmp_path / "m")

    def contract_request(self, batch_size, **changes):
        return super().contract_request(batch_size, **{"artifact": self.xmodel, **changes})

    def contract_pending_work(self, runner, prepared):
        return bool(prepared.worker.runner._jobs)  # the fake's jobs not waited for yet

    @pytest.fixture
    def device_runner(self, vitis):
        return DpuDevice(BOARDS["zcu102"]).with_options({"on_board": True})


def test_options_carried_by_the_request_are_checked_too(vitis, tmp_path):
    from types import SimpleNamespace

    device = DpuDevice(BOARDS["zcu102"]).with_options({"on_board": True})
    request = SimpleNamespace(options={"threads": "lots"}, artifact=make_xmodel(tmp_path), arch=None)
    with pytest.raises(AnbenchError, match="threads='lots'"):
        device.measure_on_device(request)


@pytest.mark.parametrize("changes, message", [
    ({"mode": "train"}, "runs inference only"),
    ({"precision": "fp16"}, "int8 only"),
])
def test_board_refuses_modes_and_precisions_it_does_not_run(changes, message):
    from anbench.plugin_types import MeasureRequest
    from anbench.searchspace import named

    request = MeasureRequest(**{"arch": named("zcu102-a"), "batch_size": 1, "input_shape": (3, 224, 224),
                                "precision": "int8", **changes})
    with pytest.raises(AnbenchError, match=message):
        DpuDevice(BOARDS["zcu102"]).measure_on_device(request)


@pytest.mark.parametrize("args", [("--repeats", "3"), ("--schedule", "fixed"), ("--ci-target", "5"),
                                  ("--no-latency",), ("--batch-size", "8"), ("--warmup", "1")])
def test_engine_options_are_refused_for_boards_that_time_themselves(run_cli, args):
    result = run_cli("measure", "--device", "zcu102", "--arch", "zcu102-a", "--on-board", *args)
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"{args[0]} would be ignored" in result.output


def test_budget_is_forwarded_to_the_board_and_unused_timing_is_not_stored(vitis, run_cli, monkeypatch, tmp_path):
    budgets = []

    def fake_measure(self, request):
        budgets.append(self.budget_s)
        return {"throughput_ips_mean": 10.0, "latency_ms_mean": 1.0, "verdict": "VALID"}

    monkeypatch.setattr(DpuDevice, "_measure", fake_measure)
    result = run_cli("measure", "--device", "zcu102", "--arch", "zcu102-a", "--on-board", "--budget-s", "7")
    assert result.exit_code == 0, result.output
    assert budgets == [7.0]
    from anbench.store import Store

    with Store.open(tmp_path / "anbench.db") as store:
        (stored,) = store.results(stage="measure", target="zcu102")
    assert not {"batch_size", "timing", "latency"} & set(stored.settings)
    assert stored.settings["device_options"] == {"on_board": True, "budget_s": "7"}
    both = run_cli("measure", "--device", "zcu102", "--arch", "zcu102-a", "--on-board", "--budget-s", "7",
                   "--option", "budget_s=7")
    assert both.exit_code == 2 and "not both" in both.output


def test_the_artifact_stored_in_the_settings_is_the_one_measured(vitis, run_cli, monkeypatch, tmp_path):
    """A compile stored while the command runs (another worker) must not change what an
    already planned measurement runs: the settings that key the result name the artifact used."""
    from anbench.searchspace import named
    from anbench.store import StageResult, Store

    db = tmp_path / "anbench.db"
    late = named("zcu102-b")
    measured = {}

    def fake_measure(self, request):
        measured[request.arch.id] = str(request.artifact) if request.artifact else None
        if len(measured) == 1:  # another worker stores a compile of the other architecture now
            with Store.open(db) as store:
                store.add_architecture(late)
                store.add_result(StageResult(late.id, "compile", "zcu102", {"compiler": "vitis-ai"},
                                             {"artifact": str(tmp_path / "late.xmodel")}, {}))
        return {"throughput_ips_mean": 10.0, "latency_ms_mean": 1.0, "verdict": "VALID"}

    monkeypatch.setattr(DpuDevice, "_measure", fake_measure)
    result = run_cli("measure", "--device", "zcu102", "--arch", "zcu102-a", "--arch", "zcu102-b", "--on-board")
    assert result.exit_code == 0, result.output
    with Store.open(db) as store:
        stored = {r.arch_id: r.settings["artifact"] for r in store.results(stage="measure", target="zcu102")}
    assert late.id in measured and stored == measured
