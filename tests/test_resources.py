"""Memory estimates made before a batch is allocated: inference and training steps."""

from __future__ import annotations

import pytest

from anbench import resources
from anbench.builtin.cpu import CpuDevice
from anbench.errors import AnbenchError
from anbench.plugin_types import MeasureRequest
from anbench.searchspace import named

B0 = named("efficientnet-b0")
SHAPE = (3, 224, 224)
MIB = 2**20
# the reviewer's measurement: one SGD step of B0, batch 16 at 224, fp32, on the CPU
B0_TRAIN_PEAK = 1303 * MIB


def test_a_training_step_is_estimated_above_its_measured_peak_and_not_wildly_above():
    train = resources.train_memory_bytes(B0, 16, SHAPE)
    inference = resources.inference_memory_bytes(B0, 16, SHAPE)
    assert B0_TRAIN_PEAK <= train <= 2 * B0_TRAIN_PEAK
    assert train > 3 * inference  # every activation is kept for the backward pass


def test_check_batch_fits_uses_the_training_estimate_in_train_mode():
    available = 1024 * MIB  # enough for inference (about 0.3 GiB), not for a training step
    resources.check_batch_fits(B0, 16, SHAPE, available=available)
    with pytest.raises(AnbenchError, match="needs about 1.5 GiB for a training step, but only 1.0 GiB"):
        resources.check_batch_fits(B0, 16, SHAPE, available=available, mode="train")


def test_cpu_device_refuses_a_training_batch_that_does_not_fit(monkeypatch):
    monkeypatch.setattr(resources, "available_memory_bytes", lambda: 1024 * MIB)
    request = MeasureRequest(B0, 16, SHAPE, threads=1, mode="train")
    with pytest.raises(AnbenchError, match="for a training step"):
        CpuDevice().prepare(request)
