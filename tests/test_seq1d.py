"""The 1-D networks of spec 2.7 (ECG, Satellite, DeepSEA) and their costs on each task's own input."""

import pytest
import torch
from torch import nn

from anbench.costs import count_costs_1d, profile_costs
from anbench.errors import AnbenchError
from anbench.models import build_seq1d_model
from anbench.models.accelnet import MBConv
from anbench.searchspace import Architecture, named, sample
from anbench.seq1d import Seq1dShape, is_seq1d, sample_seq1d, seq1d_space_size, to_seq1d

# the three tasks' inputs as spec 2.7 gives them: (channels, length, classes, stem stride)
TASKS = {
    "ecg": Seq1dShape(1, 1000, 4, stem_stride=2),
    "satellite": Seq1dShape(1, 46, 24),
    "deepsea": Seq1dShape(4, 1000, 36),
}
SMALL = to_seq1d(named("smallest"))


def test_canonical_1d_architecture_keeps_blocks_0_to_4_and_drops_se():
    b0 = named("efficientnet-b0")
    canonical = to_seq1d(b0)
    assert (canonical.e[:5], canonical.k[:5], canonical.l[:5]) == (b0.e[:5], b0.k[:5], b0.l[:5])
    assert canonical.se == (False,) * 7 and (canonical.e[5:], canonical.k[5:], canonical.l[5:]) == ((1, 1), (3, 3), (1, 1))
    assert is_seq1d(canonical) and not is_seq1d(b0)
    assert to_seq1d(canonical) == canonical
    # two architectures differing only where the 1-D net does not look share one 1-D id
    other = Architecture.from_lists(b0.e[:5] + (4, 4), b0.k, b0.l[:5] + (2, 3), [True] * 7)
    assert to_seq1d(other).id == canonical.id
    assert seq1d_space_size() == 1_889_568


def test_1d_sampler_is_seeded_canonical_and_covers_the_space():
    first = sample_seq1d(40, seed=5)
    assert first == sample_seq1d(40, seed=5) and first != sample_seq1d(40, seed=6)
    assert all(is_seq1d(a) for a in first)
    assert sample_seq1d(3, seed=5, start=10) == first[10:13]
    assert {a.e[0] for a in first} == {1, 4, 6} and {a.l[4] for a in first} == {1, 2, 3}


@pytest.mark.parametrize("task", TASKS)
def test_network_structure_follows_spec_2_7(task):
    shape = TASKS[task]
    arch = to_seq1d(named("efficientnet-b0"))  # l = 1,2,2,3,3 in blocks 0..4
    model = build_seq1d_model(arch, shape).eval()
    with torch.no_grad():
        assert model(torch.randn(2, *shape.input_shape)).shape == (2, shape.num_classes)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert convs and all(c.bias is not None for c in convs), "no normalisation: every conv has a bias"
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.Conv2d)) for m in model.modules())
    stem, *stages, head = list(model.features)
    assert (stem[0].in_channels, stem[0].out_channels, stem[0].stride) == (shape.in_channels, 32, (shape.stem_stride,))
    assert [len(stage) for stage in stages] == [1, 2, 2, 3, 3]
    assert [layer.block[-1][0].out_channels for stage in stages for layer in stage][-1] == 112
    assert all(layer.block[i][0].stride == (1,) for stage in stages for layer in stage for i in range(len(layer.block)))
    assert (head[0].in_channels, head[0].out_channels) == (112, 112)  # no 4x widening
    assert model.classifier[1].in_features == 112 and model.classifier[0].p == 0.2
    assert all(isinstance(layer, MBConv) for stage in stages for layer in stage)


def test_1d_features_keep_the_length_of_each_task():
    for task, final_length in (("ecg", 500), ("satellite", 46), ("deepsea", 1000)):
        shape = TASKS[task]
        model = build_seq1d_model(SMALL, shape, mode="deploy").eval()
        with torch.no_grad():
            assert model.features(torch.zeros(1, *shape.input_shape)).shape == (1, 112, final_length), task


def test_deploy_mode_loads_train_weights_and_bad_activation_is_one_line():
    arch = sample_seq1d(1, seed=2)[0]
    train = build_seq1d_model(arch, TASKS["ecg"])
    build_seq1d_model(arch, TASKS["ecg"], mode="deploy").load_state_dict(train.state_dict())
    with pytest.raises(AnbenchError, match="unknown activation 'gelu'"):
        build_seq1d_model(arch, TASKS["ecg"], activation="gelu")
    with pytest.raises(AnbenchError, match="stem stride"):
        Seq1dShape(1, 46, 24, stem_stride=3)


@pytest.mark.slow
@pytest.mark.parametrize("task", TASKS)
def test_analytic_costs_equal_thop_and_the_hook_profiler_on_each_tasks_input(task):
    thop = pytest.importorskip("thop")
    shape = TASKS[task]
    archs = [SMALL, to_seq1d(named("test-searchable"))] + sample_seq1d(2, seed=17)
    for arch in archs:
        analytic = count_costs_1d(arch, shape)
        hooks = profile_costs(build_seq1d_model(arch, shape), (1, *shape.input_shape))
        macs, params = thop.profile(build_seq1d_model(arch, shape), inputs=(torch.randn(1, *shape.input_shape),),
                                    verbose=False)
        assert (analytic.params, analytic.macs) == (hooks.params, hooks.macs) == (int(params), int(macs)), arch.compact


def test_costs_are_each_tasks_own_not_copied():
    arch = to_seq1d(named("efficientnet-b0"))
    costs = {task: count_costs_1d(arch, shape) for task, shape in TASKS.items()}
    assert len({c.macs for c in costs.values()}) == 3
    # the stride-2 ECG stem halves every later layer's length: about half of DeepSEA's MACs, one input channel less
    assert costs["ecg"].macs < costs["deepsea"].macs / 1.9
    assert costs["satellite"].macs < costs["ecg"].macs / 10
    # params differ only by the stem's input channels and the classifier's outputs
    assert costs["deepsea"].params - costs["satellite"].params == 3 * 32 * 3 + (36 - 24) * 113
    # the SE flags and blocks 5-6 of a 2-D architecture do not change the 1-D network
    assert count_costs_1d(named("efficientnet-b0"), TASKS["ecg"]) == costs["ecg"]


def test_2d_builder_is_unchanged_by_the_1d_generalisation():
    arch = sample(1, seed=3)[0]
    model = build_model_2d(arch)
    names = [name for name, _ in model.named_parameters()]
    assert names[:3] == ["features.0.0.weight", "features.0.1.weight", "features.0.1.bias"]
    assert not any(isinstance(m, nn.Conv2d) and m.bias is not None and m.groups > 1 for m in model.modules())


def build_model_2d(arch):
    from anbench.models import build_model

    return build_model(arch)
