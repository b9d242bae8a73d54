"""The MnasNet/EfficientNet-B0 search space of Accel-NASBench.

Contract:

* :class:`Architecture` is an immutable value: per block (0..6) an expansion ``e``,
  a depthwise kernel ``k``, a layer count ``l`` and a squeeze-excite flag ``se``.
* Its canonical encoding (:meth:`Architecture.to_record`) is the Accel-NASBench
  ``architecture`` record: the 28 keys ``block0_e, block0_k, block0_l, block0_se,
  block1_e, ... block6_se`` in that order, ints and real booleans.
* :attr:`Architecture.id` is a content id: the first 16 hex digits of the SHA-256 of
  the canonical encoding serialised as compact JSON. Equal architectures have equal
  ids on every machine and Python version.
* :func:`sample` is seeded and machine independent: architecture ``i`` of seed ``s``
  depends only on ``(SAMPLER_VERSION, s, i)`` and the constraints, never on how
  many architectures were drawn before it, so shards can be drawn independently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from itertools import chain
from typing import Any, Iterator, Mapping

from .errors import AnbenchError

NUM_BLOCKS = 7
STRIDES = (1, 2, 2, 2, 1, 2, 1)
IN_CHANNELS = (32, 16, 24, 40, 80, 112, 192)
OUT_CHANNELS = (16, 24, 40, 80, 112, 192, 320)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000

EXPANSION_CHOICES = (1, 4, 6)
KERNEL_CHOICES = (3, 5)
SE_CHOICES = (True, False)


def layer_choices(block: int) -> tuple[int, ...]:
    """Allowed layer counts of ``block``: {1,2,3}, and {1,2,3,4} for block5."""
    return (1, 2, 3, 4) if block == 5 else (1, 2, 3)


FIELDS = ("e", "k", "l", "se")
RECORD_KEYS = tuple(f"block{b}_{f}" for b in range(NUM_BLOCKS) for f in FIELDS)
# json.dumps(to_record(), separators=(",", ":")) as a %-template
_RECORD_TEMPLATE = "{" + ",".join(f'"{key}":%s' for key in RECORD_KEYS) + "}"

# Version of the sampling algorithm below; recorded with every sampled architecture.
# Bump it whenever sample() could return a different architecture for the same inputs.
SAMPLER_VERSION = "anbench-sampler/1"


def _choices_for(block: int, field: str) -> tuple:
    return {
        "e": EXPANSION_CHOICES,
        "k": KERNEL_CHOICES,
        "l": layer_choices(block),
        "se": SE_CHOICES,
    }[field]


@dataclass(frozen=True)
class Architecture:
    """One point of the search space; build it with :meth:`from_lists` or :meth:`from_record`."""

    e: tuple[int, ...]
    k: tuple[int, ...]
    l: tuple[int, ...]  # noqa: E741 (the dataset's own name)
    se: tuple[bool, ...]

    def __post_init__(self) -> None:
        for field in FIELDS:
            values = getattr(self, field)
            if not isinstance(values, tuple) or len(values) != NUM_BLOCKS:
                raise AnbenchError(f"architecture field '{field}' needs {NUM_BLOCKS} values, got {values!r}")
            for block, value in enumerate(values):
                _check_choice(f"block{block}_{field}", value, _choices_for(block, field))

    @classmethod
    def from_lists(cls, e, k, l, se) -> "Architecture":  # noqa: E741
        """Build from the compact ``[e_list, k_list, l_list, se_list]`` form (7 entries each)."""
        return cls(tuple(e), tuple(k), tuple(l), tuple(se))

    @classmethod
    def from_record(cls, record: Any) -> "Architecture":
        """Parse the 28-key record; raise :class:`AnbenchError` naming the first bad key.

        Keys may come in any order; unknown keys, missing keys, strings where ints or
        booleans belong and values outside the space are all rejected.
        """
        if type(record) is dict and len(record) == len(RECORD_KEYS):
            values = _valid_record_values(record)
            if values is not None:  # the common case, checked in one pass (imports read thousands)
                arch = object.__new__(cls)
                object.__setattr__(arch, "e", values[0::4])
                object.__setattr__(arch, "k", values[1::4])
                object.__setattr__(arch, "l", values[2::4])
                object.__setattr__(arch, "se", values[3::4])
                return arch
        if not isinstance(record, Mapping):
            raise AnbenchError(f"an architecture must be a JSON object with the 28 keys block0_e..block6_se, got {type(record).__name__}")
        unknown = [key for key in record if key not in RECORD_KEYS]
        if unknown:
            raise AnbenchError(f"unknown architecture key '{unknown[0]}' (expected block0_e .. block6_se)")
        fields: dict[str, list] = {f: [] for f in FIELDS}
        for block in range(NUM_BLOCKS):
            for field in FIELDS:
                key = f"block{block}_{field}"
                if key not in record:
                    raise AnbenchError(f"architecture is missing key '{key}'")
                fields[field].append(record[key])
        return cls.from_lists(fields["e"], fields["k"], fields["l"], fields["se"])

    def to_record(self) -> dict[str, int | bool]:
        """The canonical 28-key encoding, in canonical key order."""
        return {
            f"block{b}_{f}": getattr(self, f)[b] for b in range(NUM_BLOCKS) for f in FIELDS
        }

    def canonical_json(self) -> str:
        """``json.dumps(self.to_record(), separators=(",", ":"))``: the text the id hashes."""
        # cached in the instance __dict__ (the frozen dataclass allows that): an import or
        # export asks for it several times per record; no cached_property, whose lock costs
        # more than the formatting
        text = self.__dict__.get("_json")
        if text is None:
            # %s writes ints as json does and bools as True/False, which no key contains
            text = _RECORD_TEMPLATE % tuple(chain.from_iterable(zip(self.e, self.k, self.l, self.se)))
            text = self.__dict__["_json"] = text.replace("True", "true").replace("False", "false")
        return text

    @property
    def id(self) -> str:
        arch_id = self.__dict__.get("_id")
        if arch_id is None:
            arch_id = self.__dict__["_id"] = hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]
        return arch_id

    @property
    def num_layers(self) -> int:
        return sum(self.l)

    @property
    def compact(self) -> str:
        """Human-readable one-liner, e.g. ``e1666666-k3353553-l1223341-se1111111``."""
        return "e{}-k{}-l{}-se{}".format(
            "".join(map(str, self.e)),
            "".join(map(str, self.k)),
            "".join(map(str, self.l)),
            "".join("1" if s else "0" for s in self.se),
        )

    def blocks(self) -> Iterator["BlockConfig"]:
        """The 7 blocks with their fixed stride and widths."""
        for b in range(NUM_BLOCKS):
            yield BlockConfig(b, self.e[b], self.k[b], self.l[b], self.se[b], STRIDES[b], IN_CHANNELS[b], OUT_CHANNELS[b])


@dataclass(frozen=True)
class BlockConfig:
    index: int
    expansion: int
    kernel: int
    layers: int
    se: bool
    stride: int
    in_channels: int
    out_channels: int


_MISSING = object()


_RECORD_TYPES = tuple(bool if f == "se" else int for _ in range(NUM_BLOCKS) for f in FIELDS)  # RECORD_KEYS order
_E_SET, _K_SET = frozenset(EXPANSION_CHOICES), frozenset(KERNEL_CHOICES)
_L_SET, _L5_SET = frozenset(layer_choices(0)), frozenset(layer_choices(5))


def _valid_record_values(record: dict) -> tuple | None:
    """The 28 values in canonical order when every key is present with an allowed value of
    exactly the right type (bool for se, int otherwise); None otherwise (the slow path
    then names the problem)."""
    if tuple(record) == RECORD_KEYS:  # keys in canonical order, as every record anbench or ANB writes
        values = tuple(record.values())
    else:
        values = tuple(record.get(key, _MISSING) for key in RECORD_KEYS)
    # types first (True == 1, so the sets below cannot tell a bool from an int), then
    # each field's values against its choices; block5 alone allows 4 layers
    if tuple(map(type, values)) != _RECORD_TYPES:
        return None
    layers = values[2::4]
    if (_E_SET.issuperset(values[0::4]) and _K_SET.issuperset(values[1::4]) and layers[5] in _L5_SET
            and _L_SET.issuperset(layers[:5]) and layers[6] in _L_SET):
        return values
    return None


def _check_choice(key: str, value: Any, allowed: tuple) -> None:
    # bool is a subclass of int: True must not pass as e=1, nor 1 as se=True.
    expects_bool = isinstance(allowed[0], bool)
    ok = isinstance(value, bool) if expects_bool else (isinstance(value, int) and not isinstance(value, bool))
    if not ok or value not in allowed:
        shown = ", ".join(json.dumps(a) for a in allowed)
        text = json.dumps(value) if _jsonable(value) else repr(value)
        text = text if len(text) <= 40 else text[:37] + "..."
        raise AnbenchError(f"{key}={text} is not allowed; {key} must be one of {shown}")


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


# --- search-space size -------------------------------------------------------------


def space_size(allow_se: bool = True) -> int:
    """Number of architectures: 36^6 * 48 with SE, 18^6 * 24 without."""
    total = 1
    for b in range(NUM_BLOCKS):
        total *= len(EXPANSION_CHOICES) * len(KERNEL_CHOICES) * len(layer_choices(b)) * (2 if allow_se else 1)
    return total


# --- seeded sampling -----------------------------------------------------------------


class _DrawStream:
    """Uniform integer draws from SHA-256 in counter mode: identical on every platform."""

    def __init__(self, *key: Any) -> None:
        self._prefix = ":".join(str(k) for k in key).encode()
        self._counter = 0
        self._buffer = b""

    def _byte(self) -> int:
        if not self._buffer:
            self._buffer = hashlib.sha256(self._prefix + b":" + str(self._counter).encode()).digest()
            self._counter += 1
        value, self._buffer = self._buffer[0], self._buffer[1:]
        return value

    def choice(self, options: tuple) -> Any:
        # Rejection sampling keeps every option exactly equally likely.
        limit = 256 - (256 % len(options))
        while True:
            byte = self._byte()
            if byte < limit:
                return options[byte % len(options)]


@dataclass(frozen=True)
class Constraints:
    """Filters a sampler applies by rejection. Ranges are inclusive, in millions."""

    no_se: bool = False
    macs_m_min: float | None = None
    macs_m_max: float | None = None
    params_m_min: float | None = None
    params_m_max: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}

    @property
    def needs_costs(self) -> bool:
        return any(v is not None for v in (self.macs_m_min, self.macs_m_max, self.params_m_min, self.params_m_max))

    def admits(self, arch: Architecture) -> bool:
        if self.no_se and any(arch.se):
            return False
        if not self.needs_costs:
            return True
        from .costs import count_costs

        costs = count_costs(arch)
        return _within(costs.macs_m, self.macs_m_min, self.macs_m_max) and _within(
            costs.params_m, self.params_m_min, self.params_m_max
        )


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


MAX_ATTEMPTS_PER_ARCH = 100_000


def sample_one(seed: int, index: int, constraints: Constraints = Constraints()) -> Architecture:
    """Architecture ``index`` of the stream for ``seed``, honouring ``constraints``."""
    se_options = (False,) if constraints.no_se else SE_CHOICES
    for attempt in range(MAX_ATTEMPTS_PER_ARCH):
        draw = _DrawStream(SAMPLER_VERSION, seed, index, attempt)
        fields: dict[str, list] = {f: [] for f in FIELDS}
        for block in range(NUM_BLOCKS):
            fields["e"].append(draw.choice(EXPANSION_CHOICES))
            fields["k"].append(draw.choice(KERNEL_CHOICES))
            fields["l"].append(draw.choice(layer_choices(block)))
            fields["se"].append(draw.choice(se_options))
        arch = Architecture.from_lists(fields["e"], fields["k"], fields["l"], fields["se"])
        if constraints.admits(arch):
            return arch
    raise AnbenchError(
        f"no architecture satisfies the constraints {constraints.as_dict()} after {MAX_ATTEMPTS_PER_ARCH} draws; widen the range"
    )


def sample(n: int, seed: int, constraints: Constraints = Constraints(), start: int = 0) -> list[Architecture]:
    """Architectures ``start .. start+n-1`` of the stream for ``seed``."""
    if n < 0:
        raise AnbenchError(f"the number of architectures must be >= 0, got {n}")
    return [sample_one(seed, i, constraints) for i in range(start, start + n)]


# --- named architectures (spec 1.6) --------------------------------------------------


def _named(e, k, l, se_blocks) -> Architecture:  # noqa: E741
    return Architecture.from_lists(e, k, l, [b in se_blocks for b in range(NUM_BLOCKS)])


_ALL = set(range(NUM_BLOCKS))
_B0_E, _B0_K, _B0_L = [1, 6, 6, 6, 6, 6, 6], [3, 3, 5, 3, 5, 5, 3], [1, 2, 2, 3, 3, 4, 1]

NAMED: dict[str, Architecture] = {
    "efficientnet-b0": _named(_B0_E, _B0_K, _B0_L, _ALL),
    "smallest": _named([1] * 7, [3] * 7, [1] * 7, set()),
    "test-searchable": _named([6] * 7, [5] * 7, [3, 3, 3, 3, 3, 4, 3], _ALL),
    "zcu102-a": _named([4, 6, 6, 6, 6, 6, 6], [3, 5, 5, 5, 5, 5, 5], [2, 1, 3, 3, 3, 4, 3], {6}),
    "zcu102-b": _named([1, 6, 6, 6, 6, 6, 6], [3, 3, 5, 3, 3, 5, 5], [1, 2, 3, 1, 3, 4, 3], {4}),
    "zcu102-c": _named([1, 6, 6, 6, 6, 6, 6], [3, 3, 5, 5, 5, 5, 5], [2, 1, 3, 3, 2, 4, 1], set()),
    "vck190-a": _named([1, 6, 6, 6, 6, 6, 6], [5, 3, 5, 5, 5, 5, 5], [1, 2, 3, 3, 2, 4, 3], {3, 5, 6}),
    "vck190-b": _named([1, 6, 6, 6, 6, 6, 6], [3, 3, 5, 5, 3, 5, 5], [1, 2, 2, 3, 2, 4, 2], {5}),
    "a100-a": _named([1, 6, 6, 6, 6, 6, 6], [3, 5, 5, 5, 5, 5, 5], [2, 2, 3, 1, 3, 4, 3], {3, 4, 5, 6}),
    "a100-b": _named([1, 4, 6, 6, 6, 6, 6], [3, 3, 5, 5, 5, 5, 5], [1, 1, 2, 3, 2, 4, 2], {3, 5, 6}),
    "rtx3090-a": _named([1, 4, 6, 6, 6, 6, 6], [5] * 7, [1, 2, 3, 3, 3, 4, 2], {0, 3, 4, 5, 6}),
    "rtx3090-b": _named([1, 4, 6, 6, 6, 6, 6], [3, 3, 5, 5, 5, 5, 5], [1, 1, 2, 3, 2, 4, 2], {3, 5, 6}),
    "tpuv3-a": _named([1, 4, 6, 6, 6, 6, 6], [5] * 7, [3, 3, 3, 3, 3, 4, 3], {1, 2, 4, 5}),
    "tpuv3-b": _named([1, 6, 6, 6, 6, 6, 6], [5] * 7, [1, 2, 3, 3, 3, 3, 3], {1, 4, 5}),
}


def named(name: str) -> Architecture:
    try:
        return NAMED[name]
    except KeyError:
        raise AnbenchError(f"unknown architecture name '{name}'; known names: {', '.join(sorted(NAMED))}") from None
