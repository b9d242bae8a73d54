"""Fixtures of the fpga_dpu tests: the Vitis AI fakes on the path, and a real OpenSSH
server on 127.0.0.1 standing in for a DPU board."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from dpu_testkit import BOARD_SITECUSTOMIZE, FAKES, write_vitis_tree

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself: it must be started by absolute path
FAKE_MODULES = ("xir", "vart", "pytorch_nndct", "pytorch_nndct.apis")


@pytest.fixture
def vitis(monkeypatch, tmp_path):
    """The faked Vitis AI docker and board runtime, for code running in this process;
    afterwards the fake modules are gone from sys.modules (so availability is honest again)."""
    tree = write_vitis_tree(tmp_path / "vitis")
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.setenv("PATH", f"{tree.bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ANBENCH_VAI_ARCH_ROOT", str(tree.arch_root))
    monkeypatch.setenv("FAKE_VART_CORES", "3")
    monkeypatch.setenv("FAKE_VART_JOB_MS", "2")
    yield tree
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def run_cli(tmp_path):
    """Invoke the real click group in-process on a store in tmp_path; returns click's Result."""
    from click.testing import CliRunner

    from anbench.cli import cli

    def run(*args, store=None):
        argv = ["--store", str(store or tmp_path / "anbench.db")] + [str(a) for a in args]
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    return run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Board:
    user: str
    port: int
    identity: Path
    ssh_config: Path
    known_hosts: Path
    python: str
    work: Path

    @property
    def host(self) -> str:
        return f"{self.user}@127.0.0.1"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A "board": sshd on 127.0.0.1 (own host key, config, port) whose sessions see the fake
    xir/vart and cannot import anbench or torch. Yields the client side's facts."""
    if not os.path.exists(SSHD):
        pytest.fail(f"{SSHD} is missing: `make install` installs openssh-server (scripts/apt-packages.txt)")
    d = tmp_path_factory.mktemp("board")
    os.chmod(d, 0o755)
    for key in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    (d / "authorized_keys").write_text((d / "user_key.pub").read_text())
    site = d / "board-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BOARD_SITECUSTOMIZE)
    port = free_port()
    (d / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}", f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        "Subsystem sftp /usr/lib/openssh/sftp-server",  # scp speaks SFTP since OpenSSH 9
        f"SetEnv PYTHONPATH={site}:{FAKES} FAKE_VART_CORES=3 FAKE_VART_JOB_MS=5", "",
    ]))
    host_key = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (d / "ssh_config").write_text(f"Host 127.0.0.1\n  Port {port}\n  UserKnownHostsFile {d / 'known_hosts'}\n"
                                  "  GlobalKnownHostsFile /dev/null\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE, text=True)
    log = []
    for line in proc.stderr:  # ready once it says so; EOF means it died
        log.append(line)
        if "Server listening on 127.0.0.1" in line:
            break
    else:
        proc.wait()
        pytest.fail("sshd did not start: " + "".join(log))
    # keep reading its log, or a full pipe would block sshd
    drain = threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True)
    drain.start()
    try:
        yield Board(getpass.getuser(), port, d / "user_key", d / "ssh_config", d / "known_hosts", sys.executable,
                    d / "work")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        drain.join(timeout=30)
