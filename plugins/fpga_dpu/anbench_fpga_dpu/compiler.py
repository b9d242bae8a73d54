"""Compiler ``vitis-ai``: quantize (vai_q_pytorch), compile (vai_c_xir), cache the result.

An artifact is cached under the request's workdir in a folder named by the hash of
everything that defines it: architecture, weights (file digest, or "random" and the
seed), quantizer and compiler versions, target and its arch.json contents, calibration
settings. A folder with ``result.json`` (VALID or INVALID) is never rebuilt; the file is
written last and atomically, so an interrupted compile leaves no result.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from anbench.errors import AnbenchError
from anbench.plugin_types import CompiledArtifact, CompileRequest

from . import toolchain
from .boards import TARGETS, se_refusal
from .quantize import QuantizeSettings, quantize, quantizer_version
from .vai_c import compile_xmodel, compiler_version, read_arch_json

RESULT_FILE = "result.json"
SETTING_TYPES = {f.name: f.type for f in fields(QuantizeSettings)}


def parse_settings(settings: dict[str, Any]) -> tuple[str | None, QuantizeSettings]:
    """``(arch_json override, quantize settings)`` from ``CompileRequest.settings`` (strings allowed)."""
    known = {"arch_json", *SETTING_TYPES}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise AnbenchError(f"unknown vitis-ai compile setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for name, value in settings.items():
        if name == "arch_json" or value is None:
            continue
        kind = SETTING_TYPES[name]
        try:
            if "int" in kind:
                values[name] = int(value)
                if values[name] < (0 if name == "seed" else 1):
                    raise ValueError
            elif "bool" in kind:
                values[name] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            else:
                values[name] = str(value)
        except ValueError:
            raise AnbenchError(f"vitis-ai compile setting {name}={value!r} must be a positive integer") from None
    q = QuantizeSettings(**values)
    for what, path in (("weights", None if q.weights == "random" else q.weights), ("dataset", q.dataset)):
        if path is not None and not os.path.isfile(path):
            raise AnbenchError(f"{what} file not found: {path}")
    return settings.get("arch_json"), q


def _digest(path: str) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise AnbenchError(f"cannot read {path}: {exc}") from None
    return h.hexdigest()


def cache_key(arch_id: str, target: str, arch_json: dict, q: QuantizeSettings, versions: dict[str, str]) -> str:
    identity = {
        "arch": arch_id, "target": target, "arch_json": arch_json, "versions": versions,
        "weights": "random" if q.weights == "random" else _digest(q.weights),
        "dataset": _digest(q.dataset) if q.dataset else None,
        "quantize": {k: v for k, v in asdict(q).items() if k not in ("weights", "dataset")},
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _write_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def _artifact(result: dict) -> CompiledArtifact:
    return CompiledArtifact(Path(result["xmodel"]), result["target"], result["fingerprint"], result["metrics"])


class VitisAiCompiler:
    """Compiler ``vitis-ai`` for every target of :data:`~anbench_fpga_dpu.boards.TARGETS`.

    Settings (``anbench compile --arch-json PATH --setting KEY=VALUE``): ``arch_json``,
    ``weights`` (checkpoint path or "random"), ``calib_images`` (150), ``calib_batch`` (32),
    ``eval_images`` (100), ``dataset`` (.npz with images and labels), ``deploy_check``,
    ``seed``. The stored metrics carry ``verdict`` (VALID, or INVALID with ``reason`` when
    the DPU got more than one subgraph, FAILED when vai_c_xir failed).
    """

    name = "vitis-ai"
    summary = "Vitis AI int8 quantization (vai_q_pytorch) and vai_c_xir compilation for Xilinx DPUs"
    targets = tuple(TARGETS)

    def availability(self) -> str | None:
        return toolchain.compiler_missing()

    def refusal(self, arch, target: str) -> str | None:
        """Why ``arch`` cannot be compiled for ``target`` at all (checked before any work), else None."""
        return se_refusal(arch, TARGETS[target]) if target in TARGETS else None

    def compile(self, request: CompileRequest) -> CompiledArtifact:
        if request.target not in TARGETS:
            raise AnbenchError(f"vitis-ai has no target '{request.target}'; targets: {', '.join(self.targets)}")
        board = TARGETS[request.target]
        reason = self.availability()
        if reason:
            raise AnbenchError(f"vitis-ai cannot compile here: {reason}")
        refused = self.refusal(request.arch, request.target)
        if refused:
            raise AnbenchError(refused)
        override, q = parse_settings(dict(request.settings))
        arch_json_path = override or board.arch_json
        arch_json = read_arch_json(arch_json_path)
        versions = {"quantizer": quantizer_version(), "compiler": compiler_version()}
        key = cache_key(request.arch.id, request.target, arch_json, q, versions)
        folder = Path(request.workdir).resolve() / key
        result_path = folder / RESULT_FILE
        if result_path.is_file():
            return _artifact(json.loads(result_path.read_text()))

        documented = arch_json.get("target") or board.documented_target
        quantized = quantize(request.arch, folder / "quantized", q, documented)
        net_name = f"anb_{request.arch.id}_{request.target}"
        compiled = compile_xmodel(quantized.xmodel, arch_json_path, folder / "compiled", net_name)
        metrics = {"verdict": compiled.verdict, **({"reason": compiled.reason} if compiled.reason else {}),
                   **compiled.metrics, **quantized.metrics, "quantizer_version": versions["quantizer"],
                   "compiler_version": versions["compiler"], "cache_key": key}
        fingerprint = {"dpu_target": compiled.metrics.get("dpu_target"),
                       "dpu_fingerprint": compiled.metrics.get("dpu_fingerprint") or arch_json.get("fingerprint"),
                       "arch_json": arch_json_path,
                       "documented_target": board.documented_target}
        result = {"xmodel": str(compiled.xmodel), "target": request.target, "fingerprint": fingerprint,
                  "metrics": metrics, "quantizer_kwargs": quantized.kwargs_used}
        if compiled.verdict != "FAILED":  # a failed run may be transient: try again next time
            _write_atomic(result_path, result)
        return _artifact(result)
