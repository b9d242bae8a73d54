"""Reach a DPU board over SSH with the system OpenSSH client: copy, run, fetch JSON.

What goes to the board is a folder with a stub ``anbench_fpga_dpu`` package holding only
``board_runner.py`` and, when anbench has it, a copy of the torch-free measurement
engine (``engine.py``), plus the compiled xmodels under ``models/``. The board needs
its own Python with numpy, xir and vart (the Vitis AI board image), nothing else.

Security: host keys are always checked (``StrictHostKeyChecking=yes``, ``BatchMode=yes``:
an unknown or changed host key is an error, never a prompt). The only credential anbench
handles is the path of an identity file; an ssh_config file may be named in the
environment variable ``ANBENCH_SSH_CONFIG`` (passed as ``ssh -F``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from anbench.errors import AnbenchError

SSH_CONFIG_ENV = "ANBENCH_SSH_CONFIG"
DEFAULT_REMOTE_DIR = "anbench-dpu"  # relative: under the login's home on the board
RUNNER_MODULE = "anbench_fpga_dpu.board_runner"
STUB_INIT = '"""anbench_fpga_dpu as copied to a DPU board: the board runner and the measurement engine only."""\n'
HOST_RE = re.compile(r"^(?:(?P<user>[A-Za-z0-9._][A-Za-z0-9._-]*)@)?(?P<host>[A-Za-z0-9._][A-Za-z0-9._-]*)"
                     r"(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class SshBoard:
    """``user@host[:port]`` reached with ``ssh``/``scp``; ``identity`` is a private key file path."""

    destination: str
    port: int | None = None
    identity: str | None = None

    @classmethod
    def parse(cls, text: str, identity: str | None = None) -> "SshBoard":
        match = HOST_RE.match(text.strip())
        if not match:
            raise AnbenchError(f"--host {text!r} must be USER@HOST or USER@HOST:PORT")
        port = int(match["port"]) if match["port"] else None
        if port is not None and not 0 < port < 65536:
            raise AnbenchError(f"--host {text!r}: port must be 1-65535")
        if identity is not None and not Path(identity).is_file():
            raise AnbenchError(f"--identity {identity}: no such file")
        dest = f"{match['user']}@{match['host']}" if match["user"] else match["host"]
        return cls(dest, port, identity)

    def _options(self, port_flag: str) -> list[str]:
        opts = []
        config = os.environ.get(SSH_CONFIG_ENV)
        if config:
            opts += ["-F", config]
        opts += ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        if self.port is not None:
            opts += [port_flag, str(self.port)]
        if self.identity:
            opts += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        return opts

    def run(self, command: str, timeout_s: float) -> subprocess.CompletedProcess:
        """Run a shell command line on the board; ssh's own failures (status 255) are AnbenchErrors."""
        proc = self._call(["ssh", *self._options("-p"), self.destination, command], timeout_s)
        if proc.returncode == 255:
            raise AnbenchError(f"ssh {self.destination}: {_last_line(proc.stderr) or 'connection failed'}")
        return proc

    def put(self, paths: list[Path], remote_dir: str, timeout_s: float = 300) -> None:
        """Copy files/folders into ``remote_dir`` (created first)."""
        proc = self.run(f"mkdir -p {shlex.quote(remote_dir)}", timeout_s)
        if proc.returncode != 0:
            raise AnbenchError(f"cannot create {remote_dir} on {self.destination}: {_last_line(proc.stderr)}")
        proc = self._call(["scp", "-q", "-r", *self._options("-P"), *map(str, paths),
                           f"{self.destination}:{remote_dir}/"], timeout_s)
        if proc.returncode != 0:
            raise AnbenchError(f"scp to {self.destination}:{remote_dir} failed: {_last_line(proc.stderr)}")

    @staticmethod
    def _call(argv: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise AnbenchError(f"{argv[0]} is not on PATH; install the OpenSSH client (Debian: openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise AnbenchError(f"{argv[0]} to {argv[-2] if argv[0] == 'ssh' else argv[-1]} timed out after "
                               f"{timeout_s:.0f} s") from None


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


def engine_source() -> Path | None:
    """The torch-free engine module file, when this anbench has one."""
    try:
        spec = importlib.util.find_spec("anbench.measure.engine")
    except ImportError:
        return None
    return Path(spec.origin) if spec and spec.origin else None


def stage_runner(folder: Path) -> Path:
    """Write the board-side package into ``folder``; return the package folder."""
    package = folder / "anbench_fpga_dpu"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(STUB_INIT)
    shutil.copy2(Path(__file__).with_name("board_runner.py"), package / "board_runner.py")
    engine = engine_source()
    if engine is not None:
        shutil.copy2(engine, package / "engine.py")
    return package


def runner_argv(python: str, xmodel: str, mode: str, threads, budget_s: float) -> list[str]:
    argv = [python, "-m", RUNNER_MODULE, "--xmodel", xmodel, "--mode", mode, "--budget-s", f"{budget_s:g}"]
    if mode == "throughput" and threads:
        argv += ["--threads", str(threads)]
    return argv


def parse_runner_output(stdout: str, stderr: str, returncode: int, where: str) -> dict:
    """The runner's one JSON object; its ``error`` or a crash becomes an AnbenchError."""
    line = next((ln for ln in reversed(stdout.splitlines()) if ln.strip().startswith("{")), None)
    try:
        out = json.loads(line) if line else None
    except ValueError:
        out = None
    if isinstance(out, dict) and "error" in out:
        raise AnbenchError(f"board runner on {where}: {out['error']}")
    if returncode != 0 or not isinstance(out, dict):
        raise AnbenchError(f"board runner on {where} exited with status {returncode}: "
                           f"{_last_line(stderr) or _last_line(stdout) or 'no output'}")
    return out


class RemoteSession:
    """One deployment to one board: the runner once, each xmodel once, then runs."""

    def __init__(self, board: SshBoard, remote_dir: str = DEFAULT_REMOTE_DIR, python: str = "python3") -> None:
        self.board = board
        self.remote_dir = remote_dir
        self.python = python
        self._runner_copied = False
        self._models: set[str] = set()

    def deploy(self, xmodel: Path) -> str:
        """Copy the runner (first time) and ``xmodel`` (each content once); return its path
        relative to the remote dir."""
        # named by content: two compiles of one architecture (other settings, other work
        # folders) share a file name, and the second must not run the first's copy
        digest = hashlib.sha256(xmodel.read_bytes()).hexdigest()[:12]
        name = f"{xmodel.stem}-{digest}{xmodel.suffix}"
        with tempfile.TemporaryDirectory(prefix="anbench-dpu-") as tmp:
            stage = Path(tmp)
            paths = []
            if not self._runner_copied:
                paths.append(stage_runner(stage))
            if name not in self._models:
                models = stage / "models"
                models.mkdir()
                shutil.copy2(xmodel, models / name)
                paths.append(models)
            if paths:
                self.board.put(paths, self.remote_dir)
        self._runner_copied = True
        self._models.add(name)
        return f"models/{name}"

    def run(self, xmodel: Path, mode: str, threads, budget_s: float) -> dict:
        remote_model = self.deploy(xmodel)
        argv = runner_argv(self.python, remote_model, mode, threads, budget_s)
        command = f"cd {shlex.quote(self.remote_dir)} && {shlex.join(argv)}"
        proc = self.board.run(command, timeout_s=budget_s * 4 + 120)
        return parse_runner_output(proc.stdout, proc.stderr, proc.returncode, self.board.destination)
