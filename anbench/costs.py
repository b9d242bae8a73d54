"""Params and MACs in millions, in thop's counting convention (spec 3.2).

The Accel-NASBench records count, at 1x3x224x224:

* Conv: output elements x (C_in / groups) x kernel area (bias ignored);
* BatchNorm (affine): 4 x input elements;
* AdaptiveAvgPool: (pooling window + 1) x output elements;
* Linear: in_features x output elements;
* activations, dropout, stochastic depth, the SE multiply and the residual add: 0.

:func:`count_costs` computes that analytically from the architecture, without
building a network; :func:`count_costs_1d` does the same for the 1-D networks of the
NAS-Bench-360 tasks, on each task's own input. :func:`profile_costs` counts the same
convention on any built module with a forward pass; tests hold them (and thop itself) equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .searchspace import (
    HEAD_CHANNELS, IN_CHANNELS, NUM_CLASSES, OUT_CHANNELS, STEM_CHANNELS, STRIDES, Architecture, BlockConfig,
)

DEFAULT_RESOLUTION = 224


@dataclass(frozen=True)
class Costs:
    params: int
    macs: int

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def macs_m(self) -> float:
        return self.macs / 1e6


def _out_size(size: int, stride: int) -> int:
    # padding (k-1)//2 with odd k gives ceil(size / stride)
    return (size - 1) // stride + 1


class _Tally:
    def __init__(self) -> None:
        self.params = 0
        self.macs = 0

    def conv_bn(self, c_in: int, c_out: int, kernel: int, out_hw: int, groups: int = 1, dims: int = 2,
                norm: bool = True) -> None:
        """A conv on a square (``dims=2``) or 1-D map of side ``out_hw``; with BatchNorm, else with a conv bias."""
        weights = c_out * (c_in // groups) * kernel ** dims
        out_elements = c_out * out_hw ** dims
        self.params += weights + 2 * c_out if norm else weights + c_out
        self.macs += out_elements * (c_in // groups) * kernel ** dims + (4 * out_elements if norm else 0)

    def squeeze_excite(self, channels: int, squeeze: int, hw: int, dims: int = 2) -> None:
        self.params += channels * squeeze + squeeze + squeeze * channels + channels
        self.macs += (hw ** dims + 1) * channels  # adaptive avg-pool to 1x1
        self.macs += squeeze * channels * 2  # the two 1x1 convs on a 1x1 map


@lru_cache(maxsize=65536)
def _layer_costs(c_in: int, c_out: int, expansion: int, kernel: int, stride: int, se: bool, in_hw: int,
                 dims: int = 2, norm: bool = True) -> tuple[int, int]:
    tally = _Tally()
    expanded = c_in * expansion
    out_hw = _out_size(in_hw, stride)
    if expanded != c_in:
        tally.conv_bn(c_in, expanded, 1, in_hw, dims=dims, norm=norm)
    tally.conv_bn(expanded, expanded, kernel, out_hw, groups=expanded, dims=dims, norm=norm)
    if se:
        tally.squeeze_excite(expanded, max(1, c_in // 4), out_hw, dims=dims)
    tally.conv_bn(expanded, c_out, 1, out_hw, dims=dims, norm=norm)
    return tally.params, tally.macs


def _stage_costs(tally: _Tally, blocks, size: int, dims: int = 2, norm: bool = True) -> int:
    """Add the MBConv stages of ``blocks`` to ``tally``; returns the spatial size after them."""
    for block in blocks:
        for i in range(block.layers):
            c_in = block.in_channels if i == 0 else block.out_channels
            stride = block.stride if i == 0 else 1
            params, macs = _layer_costs(c_in, block.out_channels, block.expansion, block.kernel, stride, block.se, size,
                                        dims, norm)
            tally.params += params
            tally.macs += macs
            size = _out_size(size, stride)
    return size


def count_costs(arch: Architecture, resolution: int = DEFAULT_RESOLUTION, num_classes: int = NUM_CLASSES) -> Costs:
    """Params and MACs of the 2-D network for ``arch`` on a 1x3xRxR input, analytically."""
    params, macs, hw = _stem_costs(resolution)
    for b, (e, k, l, se) in enumerate(zip(arch.e, arch.k, arch.l, arch.se)):  # noqa: E741
        block_params, block_macs, hw = _block_costs(b, e, k, l, se, hw)
        params += block_params
        macs += block_macs
    head_params, head_macs = _head_costs(hw, num_classes)
    return Costs(params + head_params, macs + head_macs)


# An import counts thousands of architectures that share blocks: each of the 7 blocks has
# at most 36 configurations per input size, so whole blocks are cached, not just layers.
@lru_cache(maxsize=4096)
def _block_costs(b: int, e: int, k: int, l: int, se: bool, in_hw: int) -> tuple[int, int, int]:  # noqa: E741
    """(params, macs, output size) of block ``b`` of the 2-D network."""
    tally = _Tally()
    block = BlockConfig(b, e, k, l, se, STRIDES[b], IN_CHANNELS[b], OUT_CHANNELS[b])
    out_hw = _stage_costs(tally, (block,), in_hw)
    return tally.params, tally.macs, out_hw


@lru_cache(maxsize=64)
def _stem_costs(resolution: int) -> tuple[int, int, int]:
    tally = _Tally()
    hw = _out_size(resolution, 2)
    tally.conv_bn(3, STEM_CHANNELS, 3, hw)
    return tally.params, tally.macs, hw


@lru_cache(maxsize=64)
def _head_costs(hw: int, num_classes: int) -> tuple[int, int]:
    tally = _Tally()
    tally.conv_bn(OUT_CHANNELS[-1], HEAD_CHANNELS, 1, hw)
    _pool_and_classifier(tally, HEAD_CHANNELS, hw ** 2, num_classes)
    return tally.params, tally.macs


def _pool_and_classifier(tally: _Tally, channels: int, positions: int, num_classes: int) -> None:
    tally.macs += (positions + 1) * channels  # global average pool
    tally.params += channels * num_classes + num_classes
    tally.macs += channels * num_classes


def count_costs_1d(arch: Architecture, shape) -> Costs:
    """Params and MACs of the 1-D network for ``arch`` on a ``1 x C x L`` input of the task ``shape``.

    ``shape`` is a :class:`anbench.seq1d.Seq1dShape`: each task is counted on its own
    input (ECG 1x1000 with a stride-2 stem, Satellite 1x46, DeepSEA 4x1000), never copied
    from another task's. Same thop convention as :func:`count_costs`; no BatchNorm, conv biases
    count as params only.
    """
    from .seq1d import seq1d_blocks

    tally = _Tally()
    blocks = seq1d_blocks(arch)
    size = _out_size(shape.length, shape.stem_stride)
    tally.conv_bn(shape.in_channels, blocks[0].in_channels, 3, size, dims=1, norm=False)
    size = _stage_costs(tally, blocks, size, dims=1, norm=False)
    head = blocks[-1].out_channels
    tally.conv_bn(head, head, 1, size, dims=1, norm=False)
    _pool_and_classifier(tally, head, size, shape.num_classes)
    return Costs(tally.params, tally.macs)


def profile_costs(model, input_shape: tuple[int, ...] = (1, 3, DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)) -> Costs:
    """Count params and MACs of a built module with one forward pass, in thop's convention.

    Works for any module made of Conv1d/2d, BatchNorm1d/2d, AdaptiveAvgPool1d/2d,
    Linear and zero-cost layers; slower than :func:`count_costs` but needs no analytic model.
    """
    import torch
    from torch import nn

    macs = 0

    def conv(m, inputs, output):
        nonlocal macs
        macs += output.numel() * (m.in_channels // m.groups) * m.weight[0, 0].numel()

    def batchnorm(m, inputs, output):
        nonlocal macs
        macs += inputs[0].numel() * (4 if m.affine else 2)

    def adaptive_pool(m, inputs, output):
        nonlocal macs
        window = 1
        for size_in, size_out in zip(inputs[0].shape[2:], output.shape[2:]):
            window *= size_in // size_out
        macs += (window + 1) * output.numel()

    def linear(m, inputs, output):
        nonlocal macs
        macs += m.in_features * output.numel()

    counters = {
        nn.Conv1d: conv, nn.Conv2d: conv,
        nn.BatchNorm1d: batchnorm, nn.BatchNorm2d: batchnorm,
        nn.AdaptiveAvgPool1d: adaptive_pool, nn.AdaptiveAvgPool2d: adaptive_pool,
        nn.Linear: linear,
    }
    handles = [m.register_forward_hook(counters[type(m)]) for m in model.modules() if type(m) in counters]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    params = sum(p.numel() for p in model.parameters())
    return Costs(params, macs)
