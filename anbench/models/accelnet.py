"""The 2-D AccelNet: EfficientNet-B0's skeleton with the search-space choices exposed.

Reads like the table of spec section 2: stem, 7 MBConv stages, head, pool, classifier.
No torchvision: the few modules it would lend (SE, stochastic depth) are written here.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import AnbenchError
from ..searchspace import HEAD_CHANNELS, NUM_CLASSES, STEM_CHANNELS, Architecture, BlockConfig

# body activation, squeeze-excite gate
ACTIVATIONS = {
    "relu": (nn.ReLU, nn.Hardsigmoid),  # the dataset's and the DPUs' variant
    "silu": (nn.SiLU, nn.Sigmoid),  # EfficientNet's own
}
MODES = ("train", "deploy")


# per spatial rank: convolution, normalisation, global average pool
_OPS = {
    1: (nn.Conv1d, nn.BatchNorm1d, nn.AdaptiveAvgPool1d),
    2: (nn.Conv2d, nn.BatchNorm2d, nn.AdaptiveAvgPool2d),
}


def conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = None,
                dims: int = 2, norm: bool = True) -> nn.Sequential:
    """Conv (padding (k-1)//2) + BatchNorm + activation; without ``norm`` the conv carries the bias instead."""
    conv, batchnorm, _ = _OPS[dims]
    layers: list[nn.Module] = [conv(c_in, c_out, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=not norm)]
    if norm:
        layers.append(batchnorm(c_out, eps=1e-5, momentum=0.1))
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze width comes from the layer *input* width (torchvision's rule), not the expanded one."""

    def __init__(self, channels: int, squeeze: int, act: type[nn.Module], gate: type[nn.Module], dims: int = 2) -> None:
        super().__init__()
        conv, _, pool = _OPS[dims]
        self.avgpool = pool(1)
        self.fc1 = conv(channels, squeeze, 1)
        self.fc2 = conv(squeeze, channels, 1)
        self.activation = act(inplace=True)
        self.gate = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gate(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return x * scale


class StochasticDepth(nn.Module):
    """Row-mode stochastic depth: drops the whole residual branch per sample while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MBConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, expansion: int, kernel: int, stride: int, se: bool,
                 act: type[nn.Module], gate: type[nn.Module], drop_p: float | None, dims: int = 2, norm: bool = True) -> None:
        super().__init__()
        expanded = c_in * expansion
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(conv_bn_act(c_in, expanded, 1, act=act, dims=dims, norm=norm))
        layers.append(conv_bn_act(expanded, expanded, kernel, stride, groups=expanded, act=act, dims=dims, norm=norm))
        if se:
            layers.append(SqueezeExcite(expanded, max(1, c_in // 4), act, gate, dims=dims))
        layers.append(conv_bn_act(expanded, c_out, 1, dims=dims, norm=norm))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and c_in == c_out
        # deploy mode omits the module entirely so tracers and quantizers never see it
        self.stochastic_depth = StochasticDepth(drop_p) if (self.use_residual and drop_p is not None) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        if self.use_residual:
            if self.stochastic_depth is not None:
                out = self.stochastic_depth(out)
            out = out + x
        return out


def activation_pair(activation: str, mode: str) -> tuple[type[nn.Module], type[nn.Module]]:
    """(body activation, SE gate) for ``activation``; rejects unknown activations and modes."""
    if activation not in ACTIVATIONS:
        raise AnbenchError(f"unknown activation '{activation}'; choose one of {', '.join(ACTIVATIONS)}")
    if mode not in MODES:
        raise AnbenchError(f"unknown model mode '{mode}'; choose one of {', '.join(MODES)}")
    return ACTIVATIONS[activation]


def mbconv_stages(blocks: list[BlockConfig], act: type[nn.Module], gate: type[nn.Module], mode: str,
                  stochastic_depth: float, dims: int = 2, norm: bool = True) -> list[nn.Sequential]:
    """One ``nn.Sequential`` of MBConv layers per block; the first layer of a block takes its stride and input width.

    Stochastic depth grows linearly with the global layer index (0 for the first layer) and is
    left out entirely in deploy mode.
    """
    total_layers = sum(block.layers for block in blocks)
    stages = []
    layer_index = 0
    for block in blocks:
        stage = []
        for i in range(block.layers):
            drop_p = stochastic_depth * layer_index / total_layers if mode == "train" else None
            stage.append(MBConv(
                block.in_channels if i == 0 else block.out_channels, block.out_channels,
                block.expansion, block.kernel, block.stride if i == 0 else 1, block.se, act, gate, drop_p,
                dims=dims, norm=norm,
            ))
            layer_index += 1
        stages.append(nn.Sequential(*stage))
    return stages


def init_weights(model: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs with zero bias, unit/zero norms, linear uniform in +-1/sqrt(out)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            bound = 1.0 / m.out_features ** 0.5
            nn.init.uniform_(m.weight, -bound, bound)
            nn.init.zeros_(m.bias)


class AccelNet(nn.Module):
    """``features`` (stem + 7 stages + head), ``avgpool``, ``classifier`` (dropout, linear)."""

    def __init__(self, arch: Architecture, activation: str = "relu", mode: str = "train",
                 num_classes: int = NUM_CLASSES, dropout: float = 0.2, stochastic_depth: float = 0.2) -> None:
        super().__init__()
        act, gate = activation_pair(activation, mode)
        self.architecture = arch
        self.activation_name = activation
        self.mode = mode

        blocks = list(arch.blocks())
        self.features = nn.Sequential(
            conv_bn_act(3, STEM_CHANNELS, 3, 2, act=act),
            *mbconv_stages(blocks, act, gate, mode, stochastic_depth),
            conv_bn_act(blocks[-1].out_channels, HEAD_CHANNELS, 1, act=act),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(p=dropout, inplace=True), nn.Linear(HEAD_CHANNELS, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.classifier(x)


def build_model(arch: Architecture, activation: str = "relu", mode: str = "train", **kwargs) -> AccelNet:
    """Build the network for ``arch``; ``mode="deploy"`` omits stochastic depth (for tracing/quantizing)."""
    return AccelNet(arch, activation=activation, mode=mode, **kwargs)
