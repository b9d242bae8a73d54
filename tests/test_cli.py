"""The command line as a user meets it: outputs, exit codes, one-line errors."""

import json
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from anbench.searchspace import named


B0 = named("efficientnet-b0")
SMALLEST = named("smallest")


def jsonl(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_every_command_explains_itself_with_an_example(run_cli):
    from anbench.cli import cli

    def walk(group, prefix):
        for name, command in group.commands.items():
            yield prefix + [name], command
            if hasattr(command, "commands"):
                yield from walk(command, prefix + [name])

    for path, command in walk(cli, []):
        result = run_cli(*path, "--help", store=False)
        assert result.exit_code == 0, path
        if not hasattr(command, "commands"):
            assert "anbench " in result.output and "Example" in result.output, f"{path} --help lacks an example"


def test_arch_info_json_gives_exact_costs(run_cli):
    result = run_cli("arch", "info", "--format", "json", "efficientnet-b0", json.dumps(SMALLEST.to_record()))
    assert result.exit_code == 0, result.output
    rows = jsonl(result.output)
    assert [(r["id"], r["params_m"], r["macs_m"]) for r in rows] == [
        (B0.id, 5.288548, 415.145024), (SMALLEST.id, 1.798072, 57.030736)]
    assert list(rows[0]["architecture"]) == list(B0.to_record())


def test_arch_info_reads_json_lines_on_stdin_and_sample_output(run_cli):
    sampled = run_cli("sample", "-n", "50", "--seed", "9", "--format", "jsonl")
    assert sampled.exit_code == 0
    piped = run_cli("arch", "info", "--format", "json", "-", input=sampled.output)
    assert piped.exit_code == 0, piped.output
    assert [r["id"] for r in jsonl(piped.output)] == [r["id"] for r in jsonl(sampled.output)]
    bare = "\n".join(json.dumps(a.to_record()) for a in (B0, SMALLEST)) + "\n"
    rows = jsonl(run_cli("arch", "info", "--format", "json", "-", input=bare).output)
    assert [r["macs_m"] for r in rows] == [415.145024, 57.030736]


def test_arch_info_reads_a_file_and_a_stored_id(run_cli, tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(B0.to_record(), indent=2))
    assert jsonl(run_cli("arch", "info", "--format", "json", path).output)[0]["id"] == B0.id
    assert run_cli("sample", "-n", "2", "--seed", "4", "--save").exit_code == 0
    stored = jsonl(run_cli("sample", "-n", "2", "--seed", "4", "--format", "jsonl").output)
    result = run_cli("arch", "info", "--format", "json", stored[1]["id"][:8])
    assert result.exit_code == 0, result.output
    assert jsonl(result.output)[0]["id"] == stored[1]["id"]


def test_sample_constraints_and_table(run_cli):
    result = run_cli("sample", "-n", "20", "--seed", "3", "--no-se", "--macs-max", "300", "--format", "jsonl")
    rows = jsonl(result.output)
    assert len(rows) == 20
    assert all(r["macs_m"] <= 300 and not any(r["architecture"][f"block{b}_se"] for b in range(7)) for r in rows)
    assert [r["index"] for r in rows] == list(range(20))
    table = run_cli("sample", "-n", "2", "--seed", "3").output.splitlines()
    assert table[0].split() == ["index", "id", "architecture", "params_m", "macs_m"] and len(table) == 4


def _error_line(result):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("arch, fragment", [
    ('{"block0_e": 1,', "ARCH: not valid JSON"),
    (json.dumps(dict(SMALLEST.to_record(), block3_k=7)), "block3_k=7 is not allowed; block3_k must be one of 3, 5"),
    (json.dumps(dict(SMALLEST.to_record(), block0_l=4)), "block0_l=4 is not allowed; block0_l must be one of 1, 2, 3"),
    (json.dumps({k: v for k, v in SMALLEST.to_record().items() if k != "block2_se"}), "missing key 'block2_se'"),
    ("efficientnet-b7", "is not a JSON object, a file, a stored id or a named architecture"),
])
def test_bad_architectures_get_one_line_and_exit_2(run_cli, arch, fragment):
    assert fragment in _error_line(run_cli("arch", "info", arch))


def test_bad_json_line_on_stdin_names_the_line(run_cli):
    text = json.dumps(B0.to_record()) + "\n" + "{oops\n"
    assert "stdin line 2: not valid JSON" in _error_line(run_cli("arch", "info", "-", input=text))


def test_unknown_device_lists_the_known_ones(run_cli):
    line = _error_line(run_cli("measure", "--device", "tpu9", "--arch", "smallest"))
    assert "unknown device 'tpu9'; known devices:" in line and "cpu" in line


def test_unknown_dataset_and_target_list_the_known_ones():
    from anbench.errors import AnbenchError
    from anbench.plugins import make_plugin_host

    registry = make_plugin_host(load_entrypoints=False).registry
    with pytest.raises(AnbenchError, match="unknown dataset 'imagenet22k'; known datasets: synthetic"):
        registry.dataset("imagenet22k")
    with pytest.raises(AnbenchError, match="unknown target 'zcu104'; known targets: none"):
        registry.compiler_for_target("zcu104")


def test_unknown_target_through_the_cli(run_cli):
    line = _error_line(run_cli("compile", "--target", "vek280", "--arch", "smallest"))
    assert "unknown target 'vek280'; known targets:" in line


def test_unwritable_store_location(run_cli, tmp_path):
    if os.geteuid() == 0:
        # permissions do not stop root; /proc refuses new files to everyone
        target = "/proc/anbench-test.db"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
        target = ro / "x.db"
    line = _error_line(run_cli("--store", target, "sample", "-n", "1", "--save", store=False))
    assert str(target) in line


def test_unusable_store_paths(run_cli, tmp_path):
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    line = _error_line(run_cli("--store", a_file / "anbench.db", "sample", "-n", "1", "--save", store=False))
    assert str(a_file / "anbench.db") in line
    a_dir = tmp_path / "adir"
    a_dir.mkdir()
    _error_line(run_cli("--store", a_dir, "results", store=False))


def test_corrupt_store_is_reported_and_left_alone(run_cli, tmp_path):
    corrupt = tmp_path / "corrupt.db"
    payload = b"this is not an sqlite database" * 100
    corrupt.write_bytes(payload)
    line = _error_line(run_cli("--store", corrupt, "results", store=False))
    assert str(corrupt) in line
    assert corrupt.read_bytes() == payload  # never "repaired" into an empty store
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("create table t (x)")
    assert "not a usable anbench store" in _error_line(run_cli("--store", foreign, "results", store=False))


def test_measure_cpu_stores_a_measurement_and_skips_it_next_time(run_cli, store_path):
    args = ("measure", "--device", "cpu", "--arch", "smallest", "--batch-size", "2", "--resolution", "64",
            "--repeats", "2", "--batches", "1", "--warmup", "1", "--format", "json")
    first = run_cli(*args)
    assert first.exit_code == 0, first.output
    row = json.loads(first.output)[0]
    assert row["status"] == "measured" and row["throughput_ips_mean"] > 0 and row["latency_ms_mean"] > 0
    assert json.loads(run_cli(*args).output)[0]["status"] == "stored already"
    from anbench.store import Store

    store = Store.open(store_path)
    try:
        (result,) = store.results(stage="measure", target="cpu")
    finally:
        store.close()
    assert result.settings["batch_size"] == 2 and result.settings["input_shape"] == [3, 64, 64]
    prov = result.provenance
    assert prov["anbench_version"] and prov["sampler_version"] == "anbench-sampler/1"
    assert prov["device"]["kind"] == "cpu" and prov["host"]["hostname"] and prov["started_at"] <= prov["finished_at"]
    assert len(result.metrics["samples"]["throughput_ips"]) == 2


def test_measure_without_architectures_is_a_user_error(run_cli):
    assert "nothing to measure" in _error_line(run_cli("measure", "--device", "cpu"))


def test_installed_console_script_runs(tmp_path):
    # the installed entry point, as a user runs it
    exe = os.path.join(os.path.dirname(sys.executable), "anbench")
    out = subprocess.run([exe, "--store", str(tmp_path / "s.db"), "arch", "info", "--format", "json", "smallest"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["macs_m"] == 57.030736
