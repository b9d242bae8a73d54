"""The 1-D search space of the NAS-Bench-360 tasks (ECG, Satellite, DeepSEA), spec section 2.7.

Architectures stay in the 28-key encoding. The 1-D network reads only ``e``, ``k`` and ``l``
of blocks 0..4 (widths 32->16->24->40->80->112, every block stride 1, ``l`` in {1, 2, 3}, no
squeeze-excite). :func:`to_seq1d` maps any architecture to its canonical 1-D
representative (SE off everywhere, blocks 5 and 6 at the ConfigSpace defaults e=1, k=3,
l=1), so that two architectures that build the same 1-D network share one id.

No torch here: costs and samplers use it without building a network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import AnbenchError
from .searchspace import NUM_BLOCKS, Architecture, BlockConfig

SEQ1D_BLOCKS = 5
# ConfigSpace defaults (spec 1.7) for the blocks the 1-D network does not use
_UNUSED_BLOCK = (1, 3, 1, False)


@dataclass(frozen=True)
class Seq1dShape:
    """What a 1-D network depends on besides the architecture: the task's input and outputs."""

    in_channels: int
    length: int
    num_classes: int
    stem_stride: int = 1

    def __post_init__(self) -> None:
        if min(self.in_channels, self.length, self.num_classes) < 1 or self.stem_stride not in (1, 2):
            raise AnbenchError(f"bad 1-D task shape {self}: sizes must be positive and the stem stride 1 or 2")

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.in_channels, self.length)

    @classmethod
    def of(cls, dataset) -> "Seq1dShape":
        """From a registered ``seq1d`` dataset (``input_shape``, ``num_classes``, optional ``stem_stride``)."""
        channels, length = tuple(dataset.input_shape)
        return cls(channels, length, dataset.num_classes, getattr(dataset, "stem_stride", 1))


def seq1d_blocks(arch: Architecture) -> list[BlockConfig]:
    """The 5 blocks the 1-D network builds: blocks 0..4 with stride 1 and no SE."""
    return [replace(block, stride=1, se=False) for block in list(arch.blocks())[:SEQ1D_BLOCKS]]


def is_seq1d(arch: Architecture) -> bool:
    """True when ``arch`` is the canonical 1-D representative (see :func:`to_seq1d`)."""
    return arch == to_seq1d(arch)


def to_seq1d(arch: Architecture) -> Architecture:
    """The canonical 1-D architecture that builds the same 1-D network as ``arch``."""
    used = range(SEQ1D_BLOCKS)
    e = [arch.e[b] if b in used else _UNUSED_BLOCK[0] for b in range(NUM_BLOCKS)]
    k = [arch.k[b] if b in used else _UNUSED_BLOCK[1] for b in range(NUM_BLOCKS)]
    l = [arch.l[b] if b in used else _UNUSED_BLOCK[2] for b in range(NUM_BLOCKS)]  # noqa: E741
    return Architecture.from_lists(e, k, l, [False] * NUM_BLOCKS)


def seq1d_space_size() -> int:
    """18^5 = 1,889,568 1-D networks (e, k, l per block; no SE)."""
    return 18 ** SEQ1D_BLOCKS


def sample_seq1d(n: int, seed: int, start: int = 0) -> list[Architecture]:
    """Canonical 1-D architectures ``start .. start+n-1`` of the seeded stream of :func:`anbench.searchspace.sample`.

    Blocks 0..4 of the 2-D stream are uniform and independent, so their projection is
    uniform over the 1-D space; the same (seed, index) always gives the same architecture.
    """
    from .searchspace import sample

    return [to_seq1d(arch) for arch in sample(n, seed, start=start)]
