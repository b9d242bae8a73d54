"""The synthetic dataset: seeded random images, for smoke runs with no download."""

from __future__ import annotations

from ..hookspecs import hookimpl


class SyntheticDataset:
    name = "synthetic"
    summary = "seeded random 3x224x224 images with 1000 labels; needs no download"
    task = "image2d"
    num_classes = 1000
    input_shape = (3, 224, 224)

    def availability(self) -> str | None:
        return None

    def batch(self, batch_size: int, seed: int = 0, resolution: int = 224):
        """One (images, labels) batch; the same seed gives the same tensors."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        images = torch.randn((batch_size, 3, resolution, resolution), generator=generator)
        labels = torch.randint(0, self.num_classes, (batch_size,), generator=generator)
        return images, labels


@hookimpl
def register_datasets(register):
    register(SyntheticDataset())
