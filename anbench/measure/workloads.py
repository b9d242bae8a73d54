"""The per-batch work a device runner repeats: inference forward passes or training steps.

Shared by the CPU device and the device plugins so ``--mode train`` means the same thing
everywhere: forward, cross-entropy loss on fixed random labels, backward, SGD step
(momentum 0.9), gradients set to None between steps. torch is imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import AnbenchError

MODES = ("inference", "train")
TRAIN_OPTIMIZER = {"name": "sgd", "lr": 0.01, "momentum": 0.9}


@dataclass
class Workload:
    model: Any
    inputs: Any
    mode: str
    labels: Any = None
    optimizer: Any = None
    loss_fn: Any = None
    # torch_xla cannot trace under inference_mode ("Cannot set version_counter for inference tensor")
    no_grad_only: bool = False

    def step(self) -> Any:
        """One batch; returns the output (inference) or the loss (train) without reading it.

        Inference runs under ``torch.inference_mode`` (``no_grad`` with ``no_grad_only``); the
        caller's context may add autocast.
        """
        import torch

        if self.mode == "inference":
            with (torch.no_grad() if self.no_grad_only else torch.inference_mode()):
                return self.model(self.inputs)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(self.inputs), self.labels)
        loss.backward()
        self.optimizer.step()
        return loss


def check_mode(mode: str, device: str) -> None:
    if mode not in MODES:
        raise AnbenchError(f"device {device} runs modes {', '.join(MODES)}, not {mode!r}")


def build_workload(request, device: Any = "cpu", memory_format: Any = None, dtype: Any = None) -> Workload:
    """The model and inputs of ``request`` on ``device``; in train mode also labels and optimizer.

    Inference uses the deploy-mode network in ``eval()``; training the train-mode network
    (stochastic depth active) in ``train()``. ``dtype`` casts weights and inputs (bf16 on
    TPUs, where that is how the original ran).
    """
    import torch

    from ..models import build_model

    check_mode(request.mode, str(device))
    torch.manual_seed(request.seed)
    train = request.mode == "train"
    model = build_model(request.arch, activation=request.activation, mode="train" if train else "deploy")
    model = model.train() if train else model.eval()
    generator = torch.Generator().manual_seed(request.seed)
    inputs = torch.randn((request.batch_size, *request.input_shape), generator=generator)
    if memory_format is not None:
        model = model.to(device=device, memory_format=memory_format)
        inputs = inputs.to(device=device).contiguous(memory_format=memory_format)
    else:
        model, inputs = model.to(device), inputs.to(device)
    if dtype is not None:
        model, inputs = model.to(dtype), inputs.to(dtype)
    if not train:
        return Workload(model, inputs, "inference")
    classes = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1].out_features
    labels = torch.randint(0, classes, (request.batch_size,), generator=generator).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_OPTIMIZER["lr"], momentum=TRAIN_OPTIMIZER["momentum"])
    return Workload(model, inputs, "train", labels, optimizer, torch.nn.CrossEntropyLoss())
