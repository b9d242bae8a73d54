"""int8 post-training quantization with vai_q_pytorch (``pytorch_nndct.apis.torch_quantizer``).

The order the quantizer demands (spec D.1; users trip on each step):

1. ``calib``: a quantizer over the float model, forward passes over the calibration
   subset, then ``export_quant_config()`` (writes ``quant_info.json``);
2. ``test``: a new quantizer over a fresh copy of the model, forward passes at batch 1
   (the quantized accuracy when a dataset is given, else one random image), then
   ``export_xmodel()``, which writes ``<output_dir>/<ModelClass>_int.xmodel``.

The constructor's keyword arguments are built from its installed signature, which
changed between releases. torch and pytorch_nndct are imported when called, never at
module import.
"""

from __future__ import annotations

import copy
import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anbench.errors import AnbenchError

INPUT_SHAPE = (3, 224, 224)


@dataclass
class QuantizeSettings:
    weights: str = "random"  # "random" (seeded; the original's throughput models) or a checkpoint path
    calib_images: int = 150
    calib_batch: int = 32
    eval_images: int = 100
    dataset: str | None = None  # .npz with "images" (N,3,224,224 float32, normalised) and optional "labels"
    deploy_check: bool = False
    seed: int = 0


@dataclass
class Quantized:
    xmodel: Path
    quantizer_version: str
    kwargs_used: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)


def quantizer_version() -> str:
    """The installed pytorch_nndct's version (module attribute, else distribution metadata)."""
    from importlib import metadata

    try:
        return metadata.version("pytorch-nndct")
    except metadata.PackageNotFoundError:
        pass
    module = importlib.import_module("pytorch_nndct")
    return str(getattr(module, "__version__", "unknown"))


def quantizer_kwargs(quantizer_cls, wanted: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``wanted`` the installed ``torch_quantizer`` accepts."""
    params = inspect.signature(quantizer_cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(wanted)
    return {k: v for k, v in wanted.items() if k in params}


def load_weights(model, weights: str, torch) -> None:
    if weights == "random":
        return
    path = Path(weights)
    if not path.is_file():
        raise AnbenchError(f"weights file not found: {weights}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    # checkpoints of DistributedDataParallel models prefix every key with "module."
    state = {k.removeprefix("module."): v for k, v in state.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise AnbenchError(f"weights {weights} do not fit this architecture: {str(exc).splitlines()[0]}") from None


def _data(settings: QuantizeSettings, torch):
    """(calibration images, eval images, eval labels or None) as float tensors."""
    gen = torch.Generator().manual_seed(settings.seed)
    if settings.dataset is None:
        calib = torch.randn((settings.calib_images, *INPUT_SHAPE), generator=gen)
        return calib, torch.randn((1, *INPUT_SHAPE), generator=gen), None
    import numpy as np

    try:
        with np.load(settings.dataset) as data:
            images = torch.from_numpy(np.ascontiguousarray(data["images"], dtype=np.float32))
            labels = torch.from_numpy(data["labels"].astype(np.int64)) if "labels" in data else None
    except (OSError, KeyError, ValueError) as exc:
        raise AnbenchError(f"dataset {settings.dataset}: expected an .npz with 'images' (N,3,224,224) "
                           f"and optional 'labels' ({exc})") from None
    if tuple(images.shape[1:]) != INPUT_SHAPE:
        raise AnbenchError(f"dataset {settings.dataset}: images must be N x {' x '.join(map(str, INPUT_SHAPE))}, "
                           f"not {tuple(images.shape)}")
    order = torch.randperm(len(images), generator=gen)
    calib = images[order[: settings.calib_images]]
    evaluate = order[: settings.eval_images] if labels is not None else order[:1]
    return calib, images[evaluate], (labels[evaluate] if labels is not None else None)


def quantize(arch, out_dir: Path, settings: QuantizeSettings, dpu_target: str) -> Quantized:
    """Quantize ``arch`` (relu + hard-sigmoid, deploy mode) into ``out_dir``; see the module doc."""
    import torch
    from pytorch_nndct.apis import torch_quantizer

    from anbench.models.accelnet import build_model

    torch.manual_seed(settings.seed)
    model = build_model(arch, activation="relu", mode="deploy").eval()
    load_weights(model, settings.weights, torch)
    test_model = copy.deepcopy(model)
    calib, eval_images, eval_labels = _data(settings, torch)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs = quantizer_kwargs(torch_quantizer, {"output_dir": str(out_dir), "device": device, "target": dpu_target})

    calib_q = torch_quantizer("calib", model, (calib[:1].to(device),), **kwargs)
    with torch.no_grad():
        for start in range(0, len(calib), settings.calib_batch):
            calib_q.quant_model(calib[start:start + settings.calib_batch].to(device))
    calib_q.export_quant_config()

    test_q = torch_quantizer("test", test_model, (eval_images[:1].to(device),), **kwargs)
    correct1 = correct5 = 0
    with torch.no_grad():
        for i in range(len(eval_images)):  # batch 1: export_xmodel refuses any other
            logits = test_q.quant_model(eval_images[i:i + 1].to(device))
            if eval_labels is not None:
                top5 = logits.topk(5, dim=1).indices[0].cpu()
                correct1 += int(top5[0] == eval_labels[i])
                correct5 += int((top5 == eval_labels[i]).any())
    test_q.export_xmodel(output_dir=str(out_dir), deploy_check=settings.deploy_check)
    xmodel = out_dir / f"{type(test_model).__name__}_int.xmodel"
    if not xmodel.is_file():
        raise AnbenchError(f"the quantizer wrote no {xmodel.name} in {out_dir} (see its log above)")
    metrics: dict[str, Any] = {"calib_images": len(calib)}
    if eval_labels is not None:
        metrics.update(quant_top1=100.0 * correct1 / len(eval_images), quant_top5=100.0 * correct5 / len(eval_images),
                       eval_images=len(eval_images))
    return Quantized(xmodel, quantizer_version(), sorted(kwargs), metrics)
