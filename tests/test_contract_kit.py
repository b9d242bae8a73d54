"""anbench.testing: the built-in runners pass the device contract, and the contract catches
runners that break it."""

from __future__ import annotations

import json
import textwrap
from xml.etree import ElementTree

import pluggy
import pytest

import anbench
from anbench.builtin.cpu import CpuDevice
from anbench.testing import DatasetContract, DeviceContract, register_test_plugin
from anbench.testing.contract import secret_findings

pytest_plugins = ["pytester"]


class TestCpuDeviceContract(DeviceContract):
    @pytest.fixture
    def device_runner(self):
        return CpuDevice()


class TestCudaRunnerOnCpuContract(DeviceContract):
    """The cuda runner's code path, on torch device "cpu" (synchronisation is a no-op)."""

    @pytest.fixture
    def device_runner(self):
        anbench_gpu_cuda = pytest.importorskip("anbench_gpu_cuda", reason="anbench-gpu-cuda is not installed")
        return anbench_gpu_cuda.CudaDevice(device="cpu")


# --- the kit catches broken runners -----------------------------------------------------

BROKEN_RUNNERS = '''
import threading

import pytest
from anbench.builtin.cpu import CpuDevice
from anbench.testing import DeviceContract


class IgnoresBatches(CpuDevice):
    name = "ignores-batches"
    # more tries than the default: the check must catch this runner even on a machine so
    # busy that most timed calls are preempted
    contract_scaling_tries = 25

    def run(self, prepared, batches):
        super().run(prepared, 1)


class ReturnsBeforeTheWorkIsDone(CpuDevice):
    """Like an asynchronous device whose runner forgot to synchronise."""
    name = "async"

    def prepare(self, request):
        prepared = super().prepare(request)
        prepared.pending = []
        return prepared

    def run(self, prepared, batches):
        worker = threading.Thread(target=CpuDevice.run, args=(self, prepared, batches))
        worker.start()
        prepared.pending.append(worker)

    def release(self, prepared):
        for worker in prepared.pending:
            worker.join()
        super().release(prepared)


class LeaksASecret(CpuDevice):
    name = "leaky"

    def describe(self):
        return {**super().describe(), "wandb_api_key": "0123456789abcdef"}


class NotJson(CpuDevice):
    name = "notjson"

    def describe(self):
        return {"started": object()}


class ReturnsAValue(CpuDevice):
    name = "returns"

    def run(self, prepared, batches):
        super().run(prepared, batches)
        return batches


class BadNameAndSummary(CpuDevice):
    name = "My Device"
    summary = "two\\nlines"


class WrongErrorType(CpuDevice):
    name = "wrongerror"

    def prepare(self, request):
        if request.precision != "fp32":
            raise ValueError("fp32 only")
        return super().prepare(request)


class Unavailable(CpuDevice):
    name = "gone"

    def availability(self):
        return "the board is unplugged"

    def prepare(self, request):
        raise RuntimeError("device not found")  # should have been an AnbenchError


def _make(cls):
    class Test(DeviceContract):
        @pytest.fixture
        def device_runner(self):
            return cls()

        contract_scaling_tries = getattr(cls, "contract_scaling_tries", DeviceContract.contract_scaling_tries)

        def contract_pending_work(self, runner, prepared):
            if isinstance(runner, ReturnsBeforeTheWorkIsDone):
                return any(worker.is_alive() for worker in prepared.pending)
            return False  # CpuDevice runs synchronously
    Test.__name__ = Test.__qualname__ = "Test" + cls.__name__
    return Test


for _cls in (IgnoresBatches, ReturnsBeforeTheWorkIsDone, LeaksASecret, NotJson, ReturnsAValue,
             BadNameAndSummary, WrongErrorType, Unavailable):
    globals()["Test" + _cls.__name__] = _make(_cls)
'''

EXPECTED_FAILURES = {
    "TestIgnoresBatches": {"test_run_time_grows_with_batches"},
    "TestReturnsBeforeTheWorkIsDone": {"test_no_work_pending_after_run"},
    "TestLeaksASecret": {"test_describe_is_json_serialisable_and_has_no_secrets"},
    "TestNotJson": {"test_describe_is_json_serialisable_and_has_no_secrets"},
    "TestReturnsAValue": {"test_prepare_run_release[1]", "test_prepare_run_release[2]"},
    "TestBadNameAndSummary": {"test_name_is_a_lowercase_identifier", "test_summary_is_one_nonempty_line"},
    "TestWrongErrorType": {"test_unsupported_precision_is_an_anbench_error"},
    "TestUnavailable": {"test_prepare_when_unavailable_is_an_anbench_error"},
}


def test_contract_fails_exactly_the_broken_clauses(pytester):
    pytester.makepyfile(test_broken=BROKEN_RUNNERS)
    # In a subprocess: the unsynchronised runner leaves OpenMP work on other threads, which
    # must not share a process with the tests that run after this one (libgomp crashes).
    report = pytester.path / "report.xml"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-q", f"--junitxml={report}")
    got: dict[str, set[str]] = {}
    skips: dict[str, list[str]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        cls = case.get("classname").rsplit(".", 1)[-1]
        if case.find("failure") is not None or case.find("error") is not None:
            got.setdefault(cls, set()).add(case.get("name"))
        skipped = case.find("skipped")
        if skipped is not None:
            skips.setdefault(cls, []).append(skipped.get("message", ""))
    # an unsynchronised runner may or may not also fail the timing sanity check: launches
    # alone take time proportional to the batches (that is why the pending check exists)
    got.get("TestReturnsBeforeTheWorkIsDone", set()).discard("test_run_time_grows_with_batches")
    assert got == EXPECTED_FAILURES
    # the unavailable runner's run-time checks skip with its own reason, not fail
    assert skips.get("TestUnavailable") and all("the board is unplugged" in m for m in skips["TestUnavailable"])


def test_secret_findings():
    assert secret_findings({"gpu": "H100", "driver": "550.54"}) == []
    assert secret_findings({"nested": [{"hf_token": "x" * 12}]})
    assert secret_findings({"url": "https://user:hunter22@example.org/x"})
    assert secret_findings({"key": "-----BEGIN RSA PRIVATE KEY-----"})
    assert secret_findings({"auth_used": None}) == []  # an empty credential field leaks nothing


def test_secret_from_environment_is_found(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "correct horse battery")
    assert secret_findings({"command": "login --with correct horse battery"})


# --- fixtures and helpers ---------------------------------------------------------------


def test_pytest_plugin_is_loaded_through_its_entry_point(pytestconfig):
    plugin = pytestconfig.pluginmanager.get_plugin("anbench")
    assert plugin is not None and plugin.__name__ == "anbench.testing.pytest_plugin"


def test_anbench_store_is_a_fresh_path_in_tmp_path(anbench_store, tmp_path):
    assert anbench_store.parent == tmp_path and not anbench_store.exists()


def test_anbench_host_has_builtins_only(anbench_host):
    assert set(anbench_host.infos) == {"cpu", "synthetic"} and not anbench_host.errors


class _ToyRunner:
    name = "toy"
    summary = "toy"

    def availability(self):
        return None


class _ToyPlugin:
    @anbench.hookimpl
    def register_devices(self, register):
        register(_ToyRunner())


def test_register_test_plugin_on_a_host(anbench_host):
    name = register_test_plugin(anbench_host, _ToyPlugin())
    assert anbench_host.registry.owner[("devices", "toy")] == name
    assert anbench_host.infos[name].provides["devices"] == ["toy"]
    assert anbench_host.registry.device("cpu")  # the built-ins were not registered twice
    assert not anbench_host.errors


def test_register_test_plugin_on_a_host_records_load_errors(anbench_host):
    class Misspelled:
        @anbench.hookimpl
        def register_device(self, register):  # no such hook
            pass

    name = register_test_plugin(anbench_host, Misspelled())
    assert [e.plugin for e in anbench_host.errors] == [name]
    assert "register_device" in anbench_host.errors[0].error


def test_register_test_plugin_on_a_bare_manager():
    from anbench import hookspecs

    pm = pluggy.PluginManager("anbench")
    pm.add_hookspecs(hookspecs)
    seen = []
    register_test_plugin(pm, _ToyPlugin(), name="toy")
    pm.hook.register_devices(register=seen.append)
    assert [runner.name for runner in seen] == ["toy"]

    class Misspelled:
        @anbench.hookimpl
        def register_device(self, register):
            pass

    with pytest.raises(pluggy.PluginValidationError):
        register_test_plugin(pm, Misspelled(), name="bad")


def test_contract_request_uses_the_tunable_workload():
    class Tuned(DeviceContract):
        contract_arch = "efficientnet-b0"
        contract_input_shape = (3, 64, 64)

    request = Tuned().contract_request(3)
    assert (request.batch_size, request.input_shape, request.arch) == (3, (3, 64, 64), anbench.searchspace.named("efficientnet-b0"))
    json.dumps(request.settings())


class TestSyntheticDatasetContract(DatasetContract):
    @pytest.fixture
    def dataset(self):
        from anbench.builtin.synthetic import SyntheticDataset

        return SyntheticDataset()


def test_synthetic_batches_are_seeded_and_shaped():
    import torch

    from anbench.builtin.synthetic import SyntheticDataset

    data = SyntheticDataset()
    images, labels = data.batch(4, seed=3, resolution=32)
    assert images.shape == (4, 3, 32, 32) and labels.shape == (4,)
    assert int(labels.min()) >= 0 and int(labels.max()) < data.num_classes
    again, again_labels = data.batch(4, seed=3, resolution=32)
    assert torch.equal(images, again) and torch.equal(labels, again_labels)
    assert not torch.equal(images, data.batch(4, seed=4, resolution=32)[0])
