import torch
from torch import nn

from anbench.models import build_model
from anbench.models.accelnet import MBConv, SqueezeExcite, StochasticDepth
from anbench.searchspace import named, sample


def test_forward_shape_and_layer_structure():
    arch = named("efficientnet-b0")
    model = build_model(arch).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)
    stages = list(model.features)[1:8]
    assert [len(stage) for stage in stages] == list(arch.l)
    # SE squeeze width comes from the layer input width (torchvision's rule)
    first = stages[1][0]
    se = next(m for m in first.modules() if isinstance(m, SqueezeExcite))
    assert se.fc1.out_channels == 16 // 4 and se.fc1.in_channels == 16 * 6
    # residual only where stride 1 and widths match: never the first layer of a block
    assert [layer.use_residual for stage in stages for layer in stage][:3] == [False, False, True]


def test_relu_variant_uses_hardsigmoid_and_silu_variant_sigmoid():
    arch = named("efficientnet-b0")
    relu = build_model(arch, activation="relu")
    silu = build_model(arch, activation="silu")
    assert any(isinstance(m, nn.Hardsigmoid) for m in relu.modules()) and not any(isinstance(m, nn.SiLU) for m in relu.modules())
    assert any(isinstance(m, nn.Sigmoid) for m in silu.modules()) and not any(isinstance(m, nn.ReLU) for m in silu.modules())


def test_deploy_mode_omits_stochastic_depth_and_loads_train_checkpoints():
    arch = sample(1, seed=4)[0]
    train = build_model(arch, mode="train")
    deploy = build_model(arch, mode="deploy")
    depths = [m.p for m in train.modules() if isinstance(m, StochasticDepth)]
    assert depths and max(depths) < 0.2 and min(depths) >= 0.0
    assert not any(isinstance(m, StochasticDepth) for m in deploy.modules())
    deploy.load_state_dict(train.state_dict())  # strict: identical keys in both modes
    train.eval()
    deploy.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(train(x), deploy(x))


def test_no_expand_conv_when_expansion_is_one():
    model = build_model(named("smallest"))
    layer = model.features[1][0]
    assert isinstance(layer, MBConv)
    convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 2 and convs[0].groups == 32  # depthwise, then project
