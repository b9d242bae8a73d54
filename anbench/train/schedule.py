"""The proxified recipe's schedules (spec 4.7): per-step triangular LR, progressive resizing."""

from __future__ import annotations


def interp(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise-linear interpolation like ``numpy.interp`` (clamped at both ends)."""
    if x <= xs[0]:
        return ys[0]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return ys[-1]


def peak_lr(recipe: dict, world_size: int) -> float:
    """``lr`` is the peak for ``lr_batch_size`` images per step; scaled linearly with the global batch."""
    return recipe["lr"] * recipe["batch_size"] * world_size / recipe["lr_batch_size"]


def epoch_lr(epoch: float, recipe: dict, peak: float) -> float:
    """LR at an epoch boundary: ``lr_start_factor * peak`` at 0, ``peak`` at ``lr_peak_epoch``, 0 at the end."""
    return interp(epoch, [0, recipe["lr_peak_epoch"], recipe["epochs"]], [recipe["lr_start_factor"] * peak, peak, 0.0])


def step_lr(epoch: int, step: int, steps: int, recipe: dict, peak: float) -> float:
    """LR of ``step`` (0-based) of ``steps`` in ``epoch``: linear between that epoch's boundary values."""
    return interp(step, [0, steps], [epoch_lr(epoch, recipe, peak), epoch_lr(epoch + 1, recipe, peak)])


def resolution(epoch: int, recipe: dict) -> int:
    """Train resolution of ``epoch``: ``min_res`` up to ``start_ramp``, ``max_res`` from ``end_ramp``,
    linear in between, rounded half-to-even to a multiple of 32 (FFCV-ImageNet's rule)."""
    lo, hi = recipe["min_res"], recipe["max_res"]
    start, end = recipe["start_ramp"], recipe["end_ramp"]
    if epoch <= start:
        return lo
    if epoch >= end:
        return hi
    value = interp(epoch, [start, end], [lo, hi])
    return int(round(value / 32)) * 32
