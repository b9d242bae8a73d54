"""Compile with the faked Vitis AI, measure over SSH on a real OpenSSH server standing in
for the boards (its sessions see the fake xir/vart and cannot import anbench or torch),
export: the acceptance path of the DPU issue."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture
def ssh_env(board, vitis, monkeypatch):
    monkeypatch.setenv("ANBENCH_SSH_CONFIG", str(board.ssh_config))
    return board


def measure_args(board, device, *extra):
    return ["measure", "--device", device, "--host", board.host, "--identity", board.identity, "--arch", "zcu102-a",
            "--option", f"remote_dir={board.work}", "--option", f"python={board.python}",
            "--option", "budget_s=1", "--format", "json", *extra]


def test_compile_measure_over_ssh_and_export(ssh_env, run_cli, tmp_path):
    board = ssh_env
    for target in ("zcu102", "vck190"):
        result = run_cli("compile", "--target", target, "--arch", "zcu102-a", "--workdir", tmp_path / "artifacts",
                         "--setting", "calib_images=2")
        assert result.exit_code == 0, result.output
    for device in ("vck190", "zcu102"):
        result = run_cli(*measure_args(board, device))
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)[0]["status"] == "measured"

    # what ran on the board: the copied runner with the copied engine, never anbench
    assert (board.work / "anbench_fpga_dpu" / "board_runner.py").is_file()
    assert sorted(re.sub(r"-[0-9a-f]{12}\.xmodel$", ".xmodel", p.name) for p in (board.work / "models").iterdir()) == [
        f"anb_{a}_{t}.xmodel" for a, t in sorted((_arch_id(), t) for t in ("vck190", "zcu102"))]
    from anbench.store import Store

    with Store.open(tmp_path / "anbench.db") as store:
        measured = {r.target: r for r in store.results(stage="measure")}
    for device, batch, target in (("zcu102", 1, "DPUCZDX8G_ISA1_B4096"), ("vck190", 6, "DPUCVDX8G_ISA3_C32B6")):
        metrics = measured[device].metrics
        assert metrics["engine"] == "sibling"
        assert metrics["dpu_batch"] == batch and metrics["dpu_target"] == target
        assert metrics["board"] == board.host
        assert "identity" not in json.dumps(measured[device].settings)
        assert measured[device].provenance["device"]["host"] == board.host

    out = tmp_path / "anb"
    assert run_cli("export", "--format", "anb-json", "--out", out).exit_code == 0
    record = json.loads(next(out.glob("result_*.json")).read_text())
    perf = record["platform_perf"]
    for key in ("latency_zcu102", "latency_vck190", "throughput_zcu102", "throughput_vck190"):
        metric = key.split("_")[0]
        assert perf[key][f"{metric}_mean"] > 0, key
    # the fake board: 3 cores, 5 ms a job; ZCU102 jobs hold 1 image, VCK190 jobs 6. A job is
    # never faster than the DPU; wake-up delays of a loaded host add to latency (exact
    # values: test_fpga_dpu_board_runner.py), not to throughput (the queues keep cores busy)
    assert 5 <= perf["latency_zcu102"]["latency_mean"] < 50
    assert 5 <= perf["latency_vck190"]["latency_mean"] < 50
    assert perf["throughput_zcu102"]["throughput_mean"] == pytest.approx(3 / 0.005, rel=0.25)
    assert perf["throughput_vck190"]["throughput_mean"] == pytest.approx(3 * 6 / 0.005, rel=0.25)


def _arch_id():
    from anbench.searchspace import named

    return named("zcu102-a").id


def test_a_changed_host_key_is_refused(ssh_env, run_cli, tmp_path, monkeypatch):
    board = ssh_env
    assert run_cli("compile", "--target", "zcu102", "--arch", "zcu102-a", "--workdir", tmp_path / "artifacts",
                   "--setting", "calib_images=1").exit_code == 0
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = (tmp_path / "other.pub").read_text().split()
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{board.port} {other[0]} {other[1]}\n")
    config = board.ssh_config.read_text().replace(str(board.known_hosts), str(tmp_path / "known_hosts"))
    (tmp_path / "ssh_config").write_text(config)
    monkeypatch.setenv("ANBENCH_SSH_CONFIG", str(tmp_path / "ssh_config"))
    result = run_cli(*measure_args(board, "zcu102"))
    assert result.exit_code == 2
    assert result.output.startswith("error: ssh ") and "Host key verification failed" in result.output
    assert result.output.count("\n") == 1


def test_two_xmodels_of_one_name_each_reach_the_board(ssh_env, tmp_path):
    # two compiles of one architecture (other settings, other work folders) share a file name:
    # one session must copy each, and run each on its own copy
    from anbench_fpga_dpu.remote import RemoteSession, SshBoard

    board = ssh_env
    session = RemoteSession(SshBoard.parse(board.host, board.identity), str(board.work), board.python)
    first, second = tmp_path / "a" / "anb_x_zcu102.xmodel", tmp_path / "b" / "anb_x_zcu102.xmodel"
    for path, content in ((first, b"first compile"), (second, b"second compile")):
        path.parent.mkdir()
        path.write_bytes(content)
    remote = [session.deploy(first), session.deploy(second), session.deploy(first)]
    assert remote[0] != remote[1] and remote[2] == remote[0]
    assert (board.work / remote[0]).read_bytes() == b"first compile"
    assert (board.work / remote[1]).read_bytes() == b"second compile"
