"""Issue 3 end to end: import published records, measure a new device on them, export them back."""

import json

import pytest

import anb_records as anb
from anbench import hookimpl
from anbench.plugins import get_host, reset_host
from anbench.store import Store
from anbench.testing import register_test_plugin

SMALL_MEASURE = ("--batch-size", "2", "--resolution", "32", "--repeats", "2", "--batches", "1", "--warmup", "0")


def test_import_measure_cpu_export_adds_a_cpu_column_and_keeps_the_rest(run_cli, tmp_path):
    source = anb.write_dir(tmp_path / "anb", anb.UNIQUE)
    assert run_cli("import", "--format", "anb-json", source).exit_code == 0
    measured = run_cli("measure", "--device", "cpu", "--from-store", *SMALL_MEASURE)
    assert measured.exit_code == 0, measured.output
    assert "4 measured on cpu, 0 already stored" in measured.output
    out = tmp_path / "out"
    assert run_cli("export", "--format", "anb-json", "--out", out).exit_code == 0

    originals, exported = anb.load_dir(source), anb.load_dir(out)
    assert sorted(exported) == sorted(originals)
    for name, original in originals.items():
        record = exported[name]
        for key in ("architecture", "metrics", "model_info"):
            anb.assert_same_json(record[key], original[key], f"{name}.{key}")
        perf = record["platform_perf"]
        assert list(perf)[:8] == list(original["platform_perf"])
        anb.assert_same_json({k: perf[k] for k in original["platform_perf"]}, original["platform_perf"], name)
        assert list(perf)[8:] == ["latency_cpu", "throughput_cpu"]
        assert perf["throughput_cpu"]["throughput_mean"] > 0 and perf["latency_cpu"]["latency_mean"] > 0
        # anbench's own measurement brings its provenance, under the extra key only
        (own,) = record["anbench"]["results"]
        assert own["target"] == "cpu" and own["provenance"]["device"]["kind"] == "cpu"


class InterruptingDevice:
    """A real (tiny) device that is interrupted like a killed job on its third architecture."""

    name = "interruptible"
    summary = "test device: Ctrl-C on the third architecture of its first run"

    def __init__(self):
        self.prepared = []
        self.interrupt_at = 3

    def availability(self):
        return None

    def describe(self):
        return {"kind": "test"}

    def prepare(self, request):
        self.prepared.append(request.arch.id)
        if len(self.prepared) == self.interrupt_at:
            raise KeyboardInterrupt
        return request

    def run(self, prepared, batches):
        sum(i * i for i in range(1000 * batches))

    def release(self, prepared):
        pass


@pytest.fixture
def interruptible():
    reset_host()
    device = InterruptingDevice()

    class Plugin:
        @hookimpl
        def register_devices(self, register):
            register(device)

    register_test_plugin(get_host(), Plugin(), name="interruptible-test")
    yield device
    reset_host()


def test_measure_from_store_continues_where_an_interrupted_run_stopped(run_cli, store_path, interruptible):
    assert run_cli("sample", "-n", "4", "--seed", "8", "--save").exit_code == 0
    args = ("measure", "--device", "interruptible", "--from-store", "--no-latency", *SMALL_MEASURE)
    first = run_cli(*args)
    assert first.exit_code != 0  # interrupted (click's Abort)
    with Store.open(store_path) as store:
        done = [r.arch_id for r in store.results(stage="measure", target="interruptible")]
        order = [s.id for s in store.architectures()]
    assert done == order[:2]  # what finished before the interruption is kept

    interruptible.prepared.clear()
    second = run_cli(*args, "--format", "json")
    assert second.exit_code == 0, second.output
    assert [row["id"] for row in json.loads(second.output)] == order[2:]
    assert interruptible.prepared == order[2:]  # the first two are not measured again
    third = run_cli(*args)
    assert "nothing to measure" in third.output
