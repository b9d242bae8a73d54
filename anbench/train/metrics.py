"""Classification metrics shared by datasets (top-k accuracy in percent)."""

from __future__ import annotations


def topk_accuracy(outputs, targets, ks: tuple[int, ...] = (1, 5)) -> dict[str, float]:
    """``{"top1": %, "top5": %}`` of ``outputs`` (N x C logits) against class ``targets`` (N).

    k larger than the number of classes counts every sample as a hit. Empty input gives 0.
    """
    import torch

    n = int(targets.shape[0])
    if n == 0:
        return {f"top{k}": 0.0 for k in ks}
    largest = min(max(ks), outputs.shape[1])
    predicted = outputs.topk(largest, dim=1).indices
    hits = predicted.eq(targets.view(-1, 1))
    return {f"top{k}": float(hits[:, :min(k, largest)].any(dim=1).sum()) * 100.0 / n for k in ks}
