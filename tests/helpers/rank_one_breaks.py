"""The synthetic dataset, except that rank 1 alone breaks at its third train step (DDP tests).

``mode`` ``"error"``: rank 1's loader raises ``OSError("disk went away")``; ``"nan"``: its
inputs turn NaN (its loss is non-finite).
"""

from anbench.builtin.synthetic import SyntheticDataset


class BreaksOnRankOne(SyntheticDataset):
    mode = "error"

    def loader(self, request):
        batches = super().loader(request)
        if request.split != "train" or request.rank != 1:
            return batches
        return _Breaking(batches, self.mode)


class _Breaking:
    def __init__(self, inner, mode):
        self.inner = inner
        self.mode = mode

    def __len__(self):
        return len(self.inner)

    def __iter__(self):
        for step, (images, labels) in enumerate(self.inner):
            if step == 2:
                if self.mode == "error":
                    raise OSError("disk went away")
                images = images * float("nan")
            yield images, labels
