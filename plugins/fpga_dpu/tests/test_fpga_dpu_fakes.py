"""The fakes keep the real APIs' rules (peers-and-apis.md D.9), so an adapter that passes
against them cannot skip a step the real tools demand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from dpu_testkit import make_xmodel


def test_vart_execute_async_returns_a_job_tuple_for_wait(vitis, tmp_path):
    import vart
    import xir

    graph = xir.Graph.deserialize(str(make_xmodel(tmp_path)))
    dpu = [s for s in graph.get_root_subgraph().toposort_child_subgraph() if s.get_attr("device") == "DPU"][0]
    runner = vart.Runner.create_runner(dpu, "run")
    tin, tout = runner.get_input_tensors()[0], runner.get_output_tensors()[0]
    assert tin.dims == [1, 224, 224, 3] and tin.get_attr("fix_point") == 6 and tout.dims == [1, 1000]
    inp = np.ones(tin.dims, dtype=np.int8)
    out = np.zeros(tout.dims, dtype=np.int8)
    job = runner.execute_async([inp], [out])
    assert isinstance(job, tuple) and job[1] == 0
    assert runner.wait(job) == 0
    assert int(out.argmax()) == 64 % 1000  # deterministic: the image's first 64 values summed
    with pytest.raises(TypeError, match="incompatible function arguments"):
        runner.wait(runner.execute_async([inp], [out])[0])  # the job id alone is not what wait takes
    with pytest.raises(ValueError, match="dims"):
        runner.execute_async([np.ones([2, 224, 224, 3], np.int8)], [out])
    with pytest.raises(ValueError, match="int8"):
        runner.execute_async([inp.astype(np.float32)], [out])
    with pytest.raises(ValueError, match="C-contiguous"):
        runner.execute_async([np.asfortranarray(inp)], [out])
    with pytest.raises(RuntimeError, match="DPU"):
        vart.Runner.create_runner(graph.get_root_subgraph().toposort_child_subgraph()[0], "run")  # the USER one


def test_xir_lists_the_cpu_fallback_subgraphs(vitis, tmp_path):
    import xir

    graph = xir.Graph.deserialize(str(make_xmodel(tmp_path, "DPUCAHX8H_ISA2", hard_sigmoids=2)))
    root = graph.get_root_subgraph()
    assert not root.is_leaf
    assert [s.get_attr("device") for s in root.toposort_child_subgraph()] == ["USER", "DPU", "CPU", "DPU", "CPU", "DPU"]
    with pytest.raises(RuntimeError, match="XIR_FILE_NOT_EXISTED"):
        xir.Graph.deserialize(str(tmp_path / "missing.xmodel"))


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.gate = torch.nn.Hardsigmoid()
        self.fc = torch.nn.Linear(4, 10)

    def forward(self, x):
        return self.fc(self.gate(self.conv(x)).mean((2, 3)))


def test_quantizer_order_rules_and_their_error_texts(vitis, tmp_path):
    from pytorch_nndct.apis import torch_quantizer

    cpu = torch.device("cpu")
    x4, x1 = torch.randn(4, 3, 8, 8), torch.randn(1, 3, 8, 8)
    with pytest.raises(AssertionError, match="CUDA"):  # the default device is cuda
        torch_quantizer("calib", Net(), (x1,), output_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="QUANTIZER_TORCH_NO_QUANT_CONFIG"):
        torch_quantizer("test", Net(), (x1,), output_dir=str(tmp_path), device=cpu)

    calib = torch_quantizer("calib", Net(), (x1,), output_dir=str(tmp_path), device=cpu)
    with pytest.raises(RuntimeError, match="Only quantization test mode can export xmodel"):
        calib.export_xmodel(output_dir=str(tmp_path))
    calib.quant_model(x4)
    calib.export_quant_config()
    assert json.loads((tmp_path / "quant_info.json").read_text())["calib_images"] == 4

    test = torch_quantizer("test", Net(), (x1,), output_dir=str(tmp_path), device=cpu)
    with pytest.raises(TypeError, match="'data' must be a numpy ndarray"):
        test.export_xmodel(output_dir=str(tmp_path))
    test.quant_model(x4)
    with pytest.raises(RuntimeError, match="QUANTIZER_TORCH_XMODEL_BATCHSIZE"):
        test.export_xmodel(output_dir=str(tmp_path))
    test.quant_model(x1)
    test.export_xmodel(output_dir=str(tmp_path))
    spec = json.loads((tmp_path / "Net_int.xmodel").read_text())
    assert spec["ops"]["hard-sigmoid"] == 1 and spec["input_dims"] == [1, 8, 8, 3] and spec["output_classes"] == 10
