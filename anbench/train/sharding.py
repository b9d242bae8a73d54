"""Which samples of a split one rank reads, as :class:`anbench.plugin_types.DataRequest` defines it.

For datasets that address their samples by index (the synthetic data, ImageNet through FFCV
or an ImageFolder); one rule, so that they all order and share their samples alike.
"""

from __future__ import annotations

from ..plugin_types import DataRequest


def rank_indices(request: DataRequest, n: int):
    """This rank's sample indices (1-D int64 tensor) of a split of ``n`` samples (``max_samples`` applied).

    Train: the permutation seeded by ``(seed, epoch)``, cut into ``world_size`` equal disjoint
    shares, so every rank takes the same number of steps. Otherwise: every ``world_size``-th
    sample from ``rank``, so the ranks together read each sample exactly once.
    """
    import torch

    if request.max_samples is not None:
        n = min(n, request.max_samples)
    if request.split == "train":
        generator = torch.Generator().manual_seed(request.seed * 100_003 + request.epoch)
        share = n // request.world_size
        return torch.randperm(n, generator=generator)[request.rank * share:(request.rank + 1) * share]
    return torch.arange(request.rank, n, request.world_size)
