"""Numbers behind the report: Pareto fronts and rank correlations, numpy only.

Contract:

* :func:`pareto_front` takes accuracy (higher is better) and one speed metric whose
  direction is given (throughput: higher is better; latency: lower is better) and returns
  the indices of the non-dominated points, sorted by the speed metric from best to worst.
  A point is dominated when another is at least as good on both axes and strictly better
  on one; exact duplicates therefore both stay on the front.
* :func:`spearman` and :func:`kendall_tau_b` equal ``scipy.stats.spearmanr`` and
  ``scipy.stats.kendalltau`` (tau-b, ties handled) to rounding; they return ``nan`` when a
  side is constant or fewer than two points are given. Kendall runs in O(n log n) time
  (block-wise discordant-pair counting), so a 10 x 10 matrix over 5,000 architectures
  takes well under a second.
"""

from __future__ import annotations

import math

import numpy as np

# Metrics whose name says "lower is better"; everything else (throughput, accuracy) is higher-is-better.
_LOWER_IS_BETTER = ("latency", "time", "energy", "memory")


def higher_is_better(metric: str) -> bool:
    """Direction of a metric from its name: latency/time/energy/memory are lower-is-better."""
    return not any(word in metric for word in _LOWER_IS_BETTER)


def pareto_front(accuracy, speed, speed_higher_is_better: bool) -> np.ndarray:
    """Indices of the non-dominated points (see the module contract), best speed first."""
    y = np.asarray(accuracy, dtype=float)
    x = np.asarray(speed, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError("accuracy and speed must be 1-D arrays of one length")
    if not speed_higher_is_better:
        x = -x
    # best speed first; within equal speed, best accuracy first
    order = np.lexsort((-y, -x))
    front = []
    best_before = -math.inf  # best accuracy among points strictly faster than the current group
    i = 0
    n = len(order)
    while i < n:
        j = i
        while j < n and x[order[j]] == x[order[i]]:
            j += 1
        group_best = y[order[i]]
        for k in range(i, j):
            p = order[k]
            if y[p] > best_before and y[p] == group_best:
                front.append(p)
        best_before = max(best_before, group_best)
        i = j
    return np.asarray(front, dtype=int)


def average_ranks(values) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank (``scipy.stats.rankdata`` 'average')."""
    a = np.asarray(values, dtype=float)
    sorter = np.argsort(a, kind="mergesort")
    sorted_a = a[sorter]
    new_group = np.r_[True, sorted_a[1:] != sorted_a[:-1]]
    group_of_sorted = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(a)]
    avg = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(len(a))
    ranks[sorter] = avg[group_of_sorted]
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = math.sqrt(float(a @ a) * float(b @ b))
    if denom == 0.0:
        return math.nan
    return max(-1.0, min(1.0, float(a @ b) / denom))


def spearman(x, y) -> float:
    """Spearman's rho (average ranks for ties); nan for constant input or n < 2."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return math.nan
    return _pearson(average_ranks(x), average_ranks(y))


def _tie_pairs(sorted_values: np.ndarray) -> int:
    """Pairs of equal values in a sorted array."""
    if len(sorted_values) == 0:
        return 0
    boundaries = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1], True])
    counts = np.diff(boundaries)
    return int((counts * (counts - 1) // 2).sum())


def _strict_inversions(values: np.ndarray, block: int = 512) -> int:
    """Pairs i < j with values[i] > values[j]."""
    total = 0
    seen = np.empty(0, dtype=values.dtype)
    for start in range(0, len(values), block):
        chunk = values[start:start + block]
        if len(seen):
            total += int((len(seen) - np.searchsorted(seen, chunk, side="right")).sum())
        total += int(np.triu(chunk[:, None] > chunk[None, :], k=1).sum())
        seen = np.sort(np.concatenate([seen, chunk]), kind="mergesort")
    return total


def kendall_tau_b(x, y) -> float:
    """Kendall's tau-b; nan for constant input or n < 2."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    if n < 2:
        return math.nan
    order = np.lexsort((y, x))  # by x, then y: equal-x pairs are never counted as discordant
    xs, ys = x[order], y[order]
    total = n * (n - 1) // 2
    x_ties = _tie_pairs(xs)
    y_ties = _tie_pairs(np.sort(y))
    both = xs[1:] == xs[:-1]
    # pairs tied in x and y: runs of equal (x, y) in the lexicographic order
    same = np.r_[False, both & (ys[1:] == ys[:-1])]
    joint_ties = 0
    if same.any():
        run_starts = np.flatnonzero(~same)
        counts = np.diff(np.r_[run_starts, n])
        joint_ties = int((counts * (counts - 1) // 2).sum())
    discordant = _strict_inversions(ys)
    concordant_minus_discordant = total - x_ties - y_ties + joint_ties - 2 * discordant
    denom = math.sqrt(float(total - x_ties) * float(total - y_ties))
    if denom == 0.0:
        return math.nan
    return max(-1.0, min(1.0, concordant_minus_discordant / denom))
