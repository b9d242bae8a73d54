"""``vai_c_xir``: compile a quantized xmodel for one DPU and read back what it made.

``vai_c_xir -x <quantized xmodel> -a <arch.json> -o <dir> -n <name>`` writes
``<dir>/<name>.xmodel``, ``meta.json`` (with the DPU ``target``) and ``md5sum.txt``, and
logs "Total device subgraph number N, DPU subgraph number M". Anything but M = 1 means
part of the network fell back to the CPU (an unmapped hard-sigmoid, for example): the
result is INVALID for a DPU benchmark, with that reason. Where xir imports (the Vitis AI
docker), the compiled xmodel is read back for the DPU fingerprint (and for the count, if
the log lacks the line).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anbench.errors import AnbenchError

SUBGRAPHS = re.compile(r"Total device subgraph number\s+(\d+),\s*DPU subgraph number\s+(\d+)")
TARGET_LINE = re.compile(r"Target architecture:\s*(\S+)")
NOT_SUPPORTED = re.compile(r"operator named (\S+), type: ([\w-]+), is not supported", re.IGNORECASE)


@dataclass
class Compiled:
    xmodel: Path
    verdict: str  # VALID | INVALID | FAILED
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


def compiler_version() -> str:
    """First line of ``vai_c_xir --version``, or "unknown" when it says nothing usable."""
    try:
        out = subprocess.run(["vai_c_xir", "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return lines[0] if out.returncode == 0 and lines else "unknown"


def read_arch_json(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise AnbenchError(f"arch.json not found: {path} (give --arch-json, or set ANBENCH_VAI_ARCH_ROOT to the "
                           "folder that holds DPUCZDX8G/, DPUCVDX8G/, ...)") from None
    except (OSError, ValueError) as exc:
        raise AnbenchError(f"cannot read arch.json {path}: {exc}") from None


def compile_xmodel(quantized: Path, arch_json: str, out_dir: Path, net_name: str) -> Compiled:
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["vai_c_xir", "-x", str(quantized), "-a", arch_json, "-o", str(out_dir), "-n", net_name]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (out_dir / "vai_c_xir.log").write_text(log)
    xmodel = out_dir / f"{net_name}.xmodel"
    if proc.returncode != 0 or not xmodel.is_file():
        last = next((line for line in reversed(log.splitlines()) if line.strip()), "no output")
        return Compiled(xmodel, "FAILED", f"vai_c_xir exited with status {proc.returncode}: {last.strip()}")
    metrics: dict[str, Any] = {}
    meta_path = out_dir / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    target = meta.get("target") or _first(TARGET_LINE, log)
    if target:
        metrics["dpu_target"] = target
    graph = xmodel_facts(xmodel)
    counts = SUBGRAPHS.search(log)
    if counts is not None:
        metrics["device_subgraphs"] = int(counts.group(1))
        dpu = int(counts.group(2))
    elif graph is not None:
        dpu = graph["dpu_subgraphs"]
    else:
        return Compiled(xmodel, "INVALID", "vai_c_xir did not report its subgraph counts", metrics)
    metrics["dpu_subgraphs"] = dpu
    if graph and graph.get("dpu_fingerprint"):
        metrics["dpu_fingerprint"] = graph["dpu_fingerprint"]
    if dpu != 1:
        fallbacks = sorted({m.group(2) for m in NOT_SUPPORTED.finditer(log)})
        why = f" (on the CPU: {', '.join(fallbacks)})" if fallbacks else ""
        return Compiled(xmodel, "INVALID", f"{dpu} DPU subgraphs instead of 1: part of the network runs on the "
                        f"CPU{why}", metrics)
    return Compiled(xmodel, "VALID", "", metrics)


def xmodel_facts(path: Path) -> dict[str, Any] | None:
    """DPU subgraph count and fingerprint read from the compiled xmodel with XIR (the Vitis AI
    docker has it), or None where xir does not import."""
    try:
        import xir
    except ImportError:
        return None
    root = xir.Graph.deserialize(str(path)).get_root_subgraph()
    children = [] if root.is_leaf else root.toposort_child_subgraph()
    dpus = [s for s in children if s.has_attr("device") and s.get_attr("device").upper() == "DPU"]
    facts: dict[str, Any] = {"dpu_subgraphs": len(dpus)}
    if dpus and dpus[0].has_attr("dpu_fingerprint"):
        facts["dpu_fingerprint"] = str(dpus[0].get_attr("dpu_fingerprint"))
    return facts


def _first(pattern: re.Pattern, text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None
