"""The 1-D AccelNet of the NAS-Bench-360 tasks (ECG, Satellite, DeepSEA), spec section 2.7.

Same MBConv logic as the 2-D builder, on Conv1d, with the differences of the 1-D variants:

* 5 blocks (the 2-D blocks 0..4: widths 32->16->24->40->80->112), every block stride 1;
* no squeeze-excite, no normalisation (every conv carries a bias instead);
* stem k3 from the task's input channels to 32, stride 2 for ECG and 1 otherwise;
* head conv 112 -> 112 (no 4x widening), global average pool, dropout 0.2, linear.

Which part of the 28-key architecture it reads is defined in :mod:`anbench.seq1d`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..searchspace import Architecture
from ..seq1d import Seq1dShape, seq1d_blocks
from .accelnet import activation_pair, conv_bn_act, init_weights, mbconv_stages


class AccelNet1d(nn.Module):
    """``features`` (stem + 5 stages + head), ``avgpool``, ``classifier`` (dropout, linear)."""

    def __init__(self, arch: Architecture, shape: Seq1dShape, activation: str = "relu", mode: str = "train",
                 dropout: float = 0.2, stochastic_depth: float = 0.2) -> None:
        super().__init__()
        act, gate = activation_pair(activation, mode)
        self.architecture = arch
        self.shape = shape
        self.activation_name = activation
        self.mode = mode

        blocks = seq1d_blocks(arch)
        head = blocks[-1].out_channels  # 112: the 1-D head does not widen
        self.features = nn.Sequential(
            conv_bn_act(shape.in_channels, blocks[0].in_channels, 3, shape.stem_stride, act=act, dims=1, norm=False),
            *mbconv_stages(blocks, act, gate, mode, stochastic_depth, dims=1, norm=False),
            conv_bn_act(head, head, 1, act=act, dims=1, norm=False),
        )
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(head, shape.num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


def build_seq1d_model(arch: Architecture, shape: Seq1dShape, activation: str = "relu", mode: str = "train",
                      **kwargs) -> AccelNet1d:
    """Build the 1-D network of ``arch`` for a task of ``shape``; input ``N x C x L``, output ``N x num_classes``."""
    return AccelNet1d(arch, shape, activation=activation, mode=mode, **kwargs)
