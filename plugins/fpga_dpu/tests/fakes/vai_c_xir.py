"""Fake ``vai_c_xir`` compiler CLI (run through a wrapper script named vai_c_xir); see README.md."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys

FORMAT = "fake-xmodel/1"
# DPU families without hard-sigmoid: the gate of squeeze-excite falls back to the CPU
NO_HARD_SIGMOID = ("DPUCAHX8H", "DPUCADF8H")


def fingerprint(target: str) -> str:
    known = {"DPUCVDX8G_ISA3_C32B6": "0x603000b56011861"}
    return known.get(target, "0x" + hashlib.sha256(target.encode()).hexdigest()[:15])


def dpu_batch(target: str) -> int:
    m = re.search(r"C\d+B(\d+)$", target)
    return int(m.group(1)) if target.startswith("DPUCVDX8G") and m else 1


def fatal(msg: str) -> None:
    print(f"[UNILOG][FATAL][{msg}]", file=sys.stderr)
    sys.exit(1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="vai_c_xir")
    p.add_argument("-x", "--xmodel")
    p.add_argument("-a", "--arch")
    p.add_argument("-o", "--output_dir")
    p.add_argument("-n", "--net_name")
    p.add_argument("-e", "--options")
    p.add_argument("--version", action="store_true")
    a = p.parse_args(argv)
    if a.version:
        print("vai_c_xir 3.0.0 (fake)")
        return 0
    if not (a.xmodel and a.arch and a.output_dir and a.net_name):
        p.error("the following arguments are required: -x/--xmodel, -a/--arch, -o/--output_dir, -n/--net_name")
    try:
        with open(a.arch) as f:
            arch = json.load(f)
    except (OSError, ValueError) as exc:
        fatal(f"XCOM_ARCH_JSON_ERROR][cannot read arch json {a.arch}: {exc}")
    target = arch.get("target") or arch.get("fingerprint")
    try:
        with open(a.xmodel) as f:
            quant = json.load(f)
        assert quant.get("format") == FORMAT and quant.get("stage") == "quantized"
    except (OSError, ValueError, AssertionError):
        fatal(f"XIR_PROTOBUF_PARSE_FAILED][cannot parse {a.xmodel}")
    name = quant["graph"]
    print("[UNILOG][INFO] Compile mode: dpu")
    print("[UNILOG][INFO] Debug mode: function")
    print(f"[UNILOG][INFO] Target architecture: {target}")
    print(f"[UNILOG][INFO] Graph name: {name}, with op num: 312")
    print("[UNILOG][INFO] Begin to compile...")
    batch = dpu_batch(target)
    h, w, c = quant["input_dims"][1:]
    tensor_in = {"name": f"{name}__input_0_fix", "dims": [batch, h, w, c], "fix_point": 6}
    tensor_out = {"name": f"{name}__{name}_Linear_fix", "dims": [batch, quant["output_classes"]], "fix_point": 2}
    dpu_attrs = {"device": "DPU", "dpu_name": target, "dpu_fingerprint": fingerprint(target)}
    subgraphs = [{"name": "subgraph_input", "attrs": {"device": "USER"}}]
    cpu_gates = quant["ops"]["hard-sigmoid"] if target.startswith(NO_HARD_SIGMOID) else 0
    if cpu_gates:
        print(f"[UNILOG][WARNING] The operator named {name}__hardsigmoid, type: hard-sigmoid, is not supported "
              "by the DPU and is assigned to the CPU.")
    for i in range(cpu_gates + 1):
        first, last = i == 0, i == cpu_gates
        subgraphs.append({"name": f"subgraph_{name}__part_{i}", "attrs": dpu_attrs,
                          "inputs": [tensor_in] if first else [], "outputs": [tensor_out] if last else []})
        if not last:
            subgraphs.append({"name": f"subgraph_{name}__hardsigmoid_{i}", "attrs": {"device": "CPU"}})
    dpu_count = cpu_gates + 1
    print(f"[UNILOG][INFO] Total device subgraph number {len(subgraphs)}, DPU subgraph number {dpu_count}")
    os.makedirs(a.output_dir, exist_ok=True)
    out = os.path.join(a.output_dir, f"{a.net_name}.xmodel")
    with open(out, "w") as f:
        json.dump({"format": FORMAT, "graph": name, "stage": "compiled", "target": target,
                   "subgraphs": subgraphs}, f)
    with open(os.path.join(a.output_dir, "meta.json"), "w") as f:
        json.dump({"lib": "libvart-dpu-runner.so", "filename": f"{a.net_name}.xmodel",
                   "kernel": [s["name"] for s in subgraphs if s["attrs"]["device"] == "DPU"], "target": target}, f)
    with open(out, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    with open(os.path.join(a.output_dir, "md5sum.txt"), "w") as f:
        f.write(md5 + "\n")
    print("[UNILOG][INFO] Compile done.")
    print(f'[UNILOG][INFO] The meta json is saved to "{os.path.join(a.output_dir, "meta.json")}"')
    print(f'[UNILOG][INFO] The compiled xmodel is saved to "{out}"')
    print(f"[UNILOG][INFO] The compiled xmodel's md5sum is {md5}, and has been saved to "
          f'"{os.path.join(a.output_dir, "md5sum.txt")}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
