"""Hand-written Accel-NASBench records in exactly the released layout (spec 12.1).

Quirks of the released files that these records carry on purpose:

* FPGA (zcu102, vck190) std is always null;
* a device that was not measured has null mean *and* null std (TPU in result_0, FPGA in
  result_2 — like the 2 released records without FPGA values);
* block5_l = 4 (the last collection phase);
* result_1710 is the spec's example record;
* result_1711 repeats the architecture of result_0 with other values (the released set
  has 13 such repeats): both are kept, each a run of its own;
* indices are not contiguous and sort differently as text (2 < 10 < 1710 as integers).
"""

import json
from pathlib import Path

# zcu102-c: no SE, block5_l = 4
ARCH_0 = {
    "block0_e": 1, "block0_k": 3, "block0_l": 2, "block0_se": False,
    "block1_e": 6, "block1_k": 3, "block1_l": 1, "block1_se": False,
    "block2_e": 6, "block2_k": 5, "block2_l": 3, "block2_se": False,
    "block3_e": 6, "block3_k": 5, "block3_l": 3, "block3_se": False,
    "block4_e": 6, "block4_k": 5, "block4_l": 2, "block4_se": False,
    "block5_e": 6, "block5_k": 5, "block5_l": 4, "block5_se": False,
    "block6_e": 6, "block6_k": 5, "block6_l": 1, "block6_se": False,
}

RESULT_0 = {
    "architecture": ARCH_0,
    "metrics": {"val_top1": 64.118, "val_top5": 85.602, "train_time": 1702.3},
    "model_info": {"macs": 381.287648, "params": 4.537272},
    "platform_perf": {
        "latency_zcu102": {"latency_mean": 5.112, "latency_std": None},
        "latency_vck190": {"latency_mean": 3.305, "latency_std": None},
        "throughput_a100": {"throughput_mean": 10230.57, "throughput_std": 2.041},
        "throughput_3090": {"throughput_mean": 6981.2, "throughput_std": 1.117},
        "throughput_tpuv2": {"throughput_mean": None, "throughput_std": None},
        "throughput_tpuv3": {"throughput_mean": None, "throughput_std": None},
        "throughput_zcu102": {"throughput_mean": 441.9, "throughput_std": None},
        "throughput_vck190": {"throughput_mean": 2610.4, "throughput_std": None},
    },
}

# tpuv3-a: SE in blocks 1, 2, 4, 5; block5_l = 4
RESULT_2 = {
    "architecture": {
        "block0_e": 1, "block0_k": 5, "block0_l": 3, "block0_se": False,
        "block1_e": 4, "block1_k": 5, "block1_l": 3, "block1_se": True,
        "block2_e": 6, "block2_k": 5, "block2_l": 3, "block2_se": True,
        "block3_e": 6, "block3_k": 5, "block3_l": 3, "block3_se": False,
        "block4_e": 6, "block4_k": 5, "block4_l": 3, "block4_se": True,
        "block5_e": 6, "block5_k": 5, "block5_l": 4, "block5_se": True,
        "block6_e": 6, "block6_k": 5, "block6_l": 3, "block6_se": False,
    },
    "metrics": {"val_top1": 67.32, "val_top5": 87.7, "train_time": 2391.45},
    "model_info": {"macs": 604.630768, "params": 7.778586},
    "platform_perf": {
        "latency_zcu102": {"latency_mean": None, "latency_std": None},
        "latency_vck190": {"latency_mean": None, "latency_std": None},
        "throughput_a100": {"throughput_mean": 6012.35, "throughput_std": 3.9},
        "throughput_3090": {"throughput_mean": 4102.8, "throughput_std": 0.87},
        "throughput_tpuv2": {"throughput_mean": 610.4, "throughput_std": 19.02},
        "throughput_tpuv3": {"throughput_mean": 1040.0, "throughput_std": 33.5},
        "throughput_zcu102": {"throughput_mean": None, "throughput_std": None},
        "throughput_vck190": {"throughput_mean": None, "throughput_std": None},
    },
}

# vck190-b: SE only in block5; block5_l = 4; everything measured
RESULT_10 = {
    "architecture": {
        "block0_e": 1, "block0_k": 3, "block0_l": 1, "block0_se": False,
        "block1_e": 6, "block1_k": 3, "block1_l": 2, "block1_se": False,
        "block2_e": 6, "block2_k": 5, "block2_l": 2, "block2_se": False,
        "block3_e": 6, "block3_k": 5, "block3_l": 3, "block3_se": False,
        "block4_e": 6, "block4_k": 3, "block4_l": 2, "block4_se": False,
        "block5_e": 6, "block5_k": 5, "block5_l": 4, "block5_se": True,
        "block6_e": 6, "block6_k": 5, "block6_l": 2, "block6_se": False,
    },
    "metrics": {"val_top1": 65.9, "val_top5": 86.81, "train_time": 1893.0},
    "model_info": {"macs": 443.272608, "params": 6.159796},
    "platform_perf": {
        "latency_zcu102": {"latency_mean": 5.87, "latency_std": None},
        "latency_vck190": {"latency_mean": 3.41, "latency_std": None},
        "throughput_a100": {"throughput_mean": 8874.1, "throughput_std": 1.5},
        "throughput_3090": {"throughput_mean": 5990.02, "throughput_std": 1.01},
        "throughput_tpuv2": {"throughput_mean": 801.7, "throughput_std": 22.4},
        "throughput_tpuv3": {"throughput_mean": 1377.9, "throughput_std": 41.0},
        "throughput_zcu102": {"throughput_mean": 396.2, "throughput_std": None},
        "throughput_vck190": {"throughput_mean": 2411.8, "throughput_std": None},
    },
}

# the spec's example record (12.1): e=[4,1,4,6,4,6,6] k=[5,5,3,3,5,5,3] l=[1,1,3,1,2,1,2], no SE
RESULT_1710 = {
    "architecture": {
        "block0_e": 4, "block0_k": 5, "block0_l": 1, "block0_se": False,
        "block1_e": 1, "block1_k": 5, "block1_l": 1, "block1_se": False,
        "block2_e": 4, "block2_k": 3, "block2_l": 3, "block2_se": False,
        "block3_e": 6, "block3_k": 3, "block3_l": 1, "block3_se": False,
        "block4_e": 4, "block4_k": 5, "block4_l": 2, "block4_se": False,
        "block5_e": 6, "block5_k": 5, "block5_l": 1, "block5_se": False,
        "block6_e": 6, "block6_k": 3, "block6_l": 2, "block6_se": False,
    },
    "metrics": {"val_top1": 62.054, "val_top5": 84.354, "train_time": 1560.6},
    "model_info": {"macs": 369.019616, "params": 4.042824},
    "platform_perf": {
        "latency_zcu102": {"latency_mean": 4.958, "latency_std": None},
        "latency_vck190": {"latency_mean": 3.201, "latency_std": None},
        "throughput_a100": {"throughput_mean": 11102.8, "throughput_std": 1.72},
        "throughput_3090": {"throughput_mean": 7517.3, "throughput_std": 1.34},
        "throughput_tpuv2": {"throughput_mean": 922.8, "throughput_std": 24.1},
        "throughput_tpuv3": {"throughput_mean": 1561.6, "throughput_std": 46.3},
        "throughput_zcu102": {"throughput_mean": 468.6, "throughput_std": None},
        "throughput_vck190": {"throughput_mean": 2759.2, "throughput_std": None},
    },
}

# repeats the architecture of result_0 with other values: a second run of it
RESULT_1711 = json.loads(json.dumps(RESULT_1710))
RESULT_1711["architecture"] = dict(ARCH_0)
RESULT_1711["model_info"] = {"macs": 381.287648, "params": 4.537272}

UNIQUE = {0: RESULT_0, 2: RESULT_2, 10: RESULT_10, 1710: RESULT_1710}
ALL = {**UNIQUE, 1711: RESULT_1711}


def copy(record):
    """A deep copy (records are nested dicts of JSON values)."""
    return json.loads(json.dumps(record))


def write_dir(directory: Path, records=None) -> Path:
    """Write ``{index: record}`` as ``result_<index>.json`` files (the released files are json.dump output)."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, record in (ALL if records is None else records).items():
        (directory / f"result_{index}.json").write_text(json.dumps(record))
    return directory


def load_dir(directory: Path) -> dict:
    """``{file name: parsed record}`` of every result_*.json in ``directory``."""
    return {p.name: json.loads(p.read_text()) for p in sorted(directory.glob("result_*.json"))}


def assert_same_json(a, b, where="record"):
    """Equal values *and* the same key order at every level."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a.keys()) == list(b.keys()), f"{where}: keys {list(a)} != {list(b)}"
        for key in a:
            assert_same_json(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_json(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"
