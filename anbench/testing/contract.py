"""Conformance suites that a plugin's own tests subclass.

Example, in a plugin's ``tests/test_mydevice.py``::

    import pytest
    from anbench.testing import DeviceContract
    from anbench_mydevice import MyDevice

    class TestMyDevice(DeviceContract):
        @pytest.fixture
        def device_runner(self):
            return MyDevice()

Every check states one clause of the contract in :mod:`anbench.hookspecs`; a check that
needs a usable device skips with the runner's own availability reason when it is not.
Class attributes named ``contract_*`` tune the workload (keep it small: the suite runs
in seconds on a CPU).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from typing import Any

import pytest

# words that make a describe() key look like it holds a credential
SECRET_KEY_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "credential",
                    "private_key", "auth", "cookie", "session_key")
_SECRET_VALUE_PATTERNS = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"\bsk-[A-Za-z0-9_-]{20,}"),  # OpenAI-style keys
    re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # user:password@ in a URL
)
_NAME_RE = re.compile(r"[a-z][a-z0-9_-]*\Z")


def _one_line(text: Any) -> bool:
    return isinstance(text, str) and bool(text.strip()) and "\n" not in text and "\r" not in text


def _walk(obj: Any, path: str = ""):
    """Yield (path, key, value) for every entry of nested dicts and lists."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"{path}.{key}", str(key), value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield f"{path}[{index}]", "", value
            yield from _walk(value, f"{path}[{index}]")


def secret_findings(facts: Any) -> list[str]:
    """Where ``facts`` looks like it carries a credential (empty list: nothing found)."""
    findings = []
    secret_env_values = {value for key, value in os.environ.items()
                         if len(value) >= 8 and any(word in key.lower() for word in SECRET_KEY_WORDS)}
    for path, key, value in _walk(facts):
        if key and any(word in key.lower() for word in SECRET_KEY_WORDS) and value not in (None, "", False):
            findings.append(f"{path}: key looks like a credential")
        if isinstance(value, str):
            if any(pattern.search(value) for pattern in _SECRET_VALUE_PATTERNS):
                findings.append(f"{path}: value looks like a credential")
            if any(secret in value for secret in secret_env_values):
                findings.append(f"{path}: value contains a secret-looking environment variable")
    return findings


class _RegisteredContract:
    """What every registered object promises: name, summary, availability."""

    @pytest.fixture
    def registered(self):  # overridden by each suite to point at its object fixture
        raise NotImplementedError

    def test_name_is_a_lowercase_identifier(self, registered):
        assert isinstance(registered.name, str) and _NAME_RE.match(registered.name), (
            f"name {registered.name!r} must be lowercase letters, digits, '-' or '_', starting with a letter")

    def test_summary_is_one_nonempty_line(self, registered):
        assert _one_line(registered.summary), f"summary {registered.summary!r} must be one non-empty line"

    def test_availability_is_none_or_a_one_line_reason(self, registered):
        reason = registered.availability()
        assert reason is None or _one_line(reason), f"availability() returned {reason!r}"
        assert registered.availability() == reason, "availability() must give the same answer twice in a row"


class DeviceContract(_RegisteredContract):
    """Conformance suite for a :class:`anbench.plugin_types.DeviceRunner`.

    Subclass it and provide a ``device_runner`` fixture. Tune with class attributes:

    * ``contract_arch`` (a named architecture) and ``contract_input_shape`` (C, H, W):
      the workload, by default the smallest architecture on 3x32x32 inputs;
    * ``contract_precision``: a precision the device serves (``"fp32"``);
    * ``contract_scaling_batches`` / ``contract_scaling_min_ratio``: ``run(k)`` must take
      at least ``min_ratio`` times as long as ``run(1)`` (best of ``contract_scaling_tries``
      interleaved calls each), the synchronisation sanity check: a runner that returns before the device
      finished, or that ignores ``batches``, fails it (launch costs also grow with
      ``batches``, so this alone cannot prove synchronisation);
    * :meth:`contract_pending_work`: override it where the device can tell whether work
      is still queued (CUDA: ``not stream.query()``); the suite then checks that nothing
      is pending when ``run()`` returns.
    """

    contract_arch = "smallest"
    contract_input_shape: tuple[int, ...] = (3, 32, 32)
    contract_precision = "fp32"
    contract_scaling_batches = 8
    contract_scaling_min_ratio = 2.0
    contract_scaling_tries = 9

    @pytest.fixture
    def device_runner(self):
        pytest.fail("a DeviceContract subclass must define a `device_runner` fixture")

    @pytest.fixture
    def registered(self, device_runner):
        return device_runner

    @pytest.fixture
    def available_runner(self, device_runner):
        reason = device_runner.availability()
        if reason is not None:
            pytest.skip(f"device {device_runner.name!r} is not available here: {reason}")
        return device_runner

    def contract_request(self, batch_size: int, **changes):
        from ..plugin_types import MeasureRequest
        from ..searchspace import named

        fields = dict(arch=named(self.contract_arch), batch_size=batch_size,
                      input_shape=tuple(self.contract_input_shape), precision=self.contract_precision)
        fields.update(changes)
        return MeasureRequest(**fields)

    def contract_pending_work(self, runner, prepared) -> bool | None:
        """True while work launched by ``run()`` is still executing on the device, False
        when the device is idle, None when this cannot be told (the check skips)."""
        return None

    # -- facts --

    def test_describe_is_json_serialisable_and_has_no_secrets(self, device_runner):
        facts = device_runner.describe()
        assert isinstance(facts, dict) and facts, "describe() must return a non-empty dict"
        json.dumps(facts)  # raises TypeError for non-JSON-able values
        assert not secret_findings(facts), secret_findings(facts)

    # -- running --

    @pytest.mark.parametrize("batch_size", [1, 2])
    def test_prepare_run_release(self, available_runner, batch_size):
        prepared = available_runner.prepare(self.contract_request(batch_size))
        try:
            assert available_runner.run(prepared, 1) is None, "run() must return None"
            assert available_runner.run(prepared, 2) is None
        finally:
            available_runner.release(prepared)

    def test_prepared_handles_are_independent(self, available_runner):
        first = available_runner.prepare(self.contract_request(1))
        second = available_runner.prepare(self.contract_request(2))
        available_runner.run(first, 1)
        available_runner.run(second, 1)
        available_runner.release(second)
        available_runner.run(first, 1)  # releasing one handle leaves the other usable
        available_runner.release(first)

    def test_run_time_grows_with_batches(self, available_runner):
        k = self.contract_scaling_batches
        prepared = available_runner.prepare(self.contract_request(1))
        try:
            available_runner.run(prepared, 2)  # warm-up: lazy init, allocator, autotuning
            one, many, one_cpu, many_cpu = [], [], [], []
            for _ in range(self.contract_scaling_tries):  # interleaved, so drift hits both
                start, start_cpu = time.perf_counter(), time.process_time()
                available_runner.run(prepared, 1)
                middle, middle_cpu = time.perf_counter(), time.process_time()
                available_runner.run(prepared, k)
                one.append(middle - start)
                many.append(time.perf_counter() - middle)
                one_cpu.append(middle_cpu - start_cpu)
                many_cpu.append(time.process_time() - middle_cpu)
        finally:
            available_runner.release(prepared)
        # best of each: on a busy machine preemption only ever adds time, so the minimum is
        # the call that ran undisturbed. On a host so busy that no call ran undisturbed, the
        # process's own CPU time still grows with the work a host-side runner does.
        ratio = min(many) / min(one)
        if min(one_cpu) > 0:
            ratio = max(ratio, min(many_cpu) / min(one_cpu))
        assert ratio >= self.contract_scaling_min_ratio, (
            f"run({k}) took only {ratio:.2f}x as long as run(1) (best of {len(one)} each): run() must "
            "do every batch and return only after the device finished them")

    def test_no_work_pending_after_run(self, available_runner):
        prepared = available_runner.prepare(self.contract_request(2))
        try:
            available_runner.run(prepared, 1)
            if self.contract_pending_work(available_runner, prepared) is None:
                pytest.skip("the suite cannot tell whether this device has work queued "
                            "(override contract_pending_work to check it)")
            available_runner.run(prepared, self.contract_scaling_batches)
            pending = self.contract_pending_work(available_runner, prepared)
        finally:
            available_runner.release(prepared)
        assert pending is False, "run() returned while the device still had work queued: synchronise before returning"

    def test_measure_gives_positive_finite_numbers(self, available_runner):
        from ..measure.timing import TimingPolicy, measure

        result = measure(available_runner, self.contract_request(2),
                         TimingPolicy(warmup_batches=1, repeats=2, batches_per_repeat=2))
        for value in (result.throughput_ips_mean, result.latency_ms_mean):
            assert value is not None and math.isfinite(value) and value > 0, result
        assert len(result.samples["throughput_ips"]) == 2 and len(result.samples["latency_ms"]) == 2

    # -- errors --

    def test_unsupported_precision_is_an_anbench_error(self, available_runner):
        from ..errors import AnbenchError

        with pytest.raises(AnbenchError):
            available_runner.prepare(self.contract_request(1, precision="no-such-precision"))

    def test_prepare_when_unavailable_is_an_anbench_error(self, device_runner):
        from ..errors import AnbenchError

        if device_runner.availability() is None:
            pytest.skip("the device is available here")
        with pytest.raises(AnbenchError) as info:
            device_runner.prepare(self.contract_request(1))
        assert _one_line(str(info.value))


class DatasetContract(_RegisteredContract):
    """Conformance suite for a :class:`anbench.plugin_types.Dataset`; provide ``dataset``."""

    @pytest.fixture
    def dataset(self):
        pytest.fail("a DatasetContract subclass must define a `dataset` fixture")

    @pytest.fixture
    def registered(self, dataset):
        return dataset

    def test_shape_matches_task(self, dataset):
        assert dataset.task in ("image2d", "seq1d"), dataset.task
        shape = tuple(dataset.input_shape)
        assert all(isinstance(n, int) and n > 0 for n in shape), shape
        assert len(shape) == (3 if dataset.task == "image2d" else 2), (
            f"input_shape {shape} is channels-first without batch: (C, H, W) for image2d, (C, L) for seq1d")

    def test_num_classes_is_positive(self, dataset):
        assert isinstance(dataset.num_classes, int) and dataset.num_classes > 0

    # -- reading data (skipped when the dataset's files are not here) --

    #: samples per split the loader checks read (keep it small)
    contract_max_samples = 8

    @pytest.fixture
    def available_dataset(self, dataset):
        reason = dataset.availability()
        if reason is not None:
            pytest.skip(f"dataset {dataset.name!r} is not available here: {reason}")
        return dataset

    def contract_data_request(self, dataset, split: str, **changes):
        from ..plugin_types import DataRequest

        fields = dict(split=split, batch_size=4, max_samples=self.contract_max_samples,
                      resolution=dataset.input_shape[-1] if dataset.task == "image2d" else None)
        fields.update(changes)
        return DataRequest(**fields)

    def _batches(self, dataset, split: str, **changes) -> list:
        return list(dataset.loader(self.contract_data_request(dataset, split, **changes)))

    def test_metric_name_is_a_string(self, dataset):
        assert isinstance(dataset.metric_name, str) and _NAME_RE.match(dataset.metric_name), dataset.metric_name

    @pytest.mark.parametrize("split", ["train", "val"])
    def test_loader_yields_shaped_batches(self, available_dataset, split):
        import torch

        batches = self._batches(available_dataset, split)
        assert batches, f"the {split} loader yielded no batch from {self.contract_max_samples} samples"
        for batch in batches:
            assert len(batch) in (2, 3), "a batch is (inputs, targets) or (inputs, targets, groups)"
            inputs, targets = batch[0], batch[1]
            assert inputs.is_floating_point() and inputs.shape[0] == targets.shape[0] <= 4
            assert tuple(inputs.shape[1:]) == tuple(available_dataset.input_shape), inputs.shape
            if getattr(available_dataset, "multilabel", False):
                assert tuple(targets.shape[1:]) == (available_dataset.num_classes,)
            else:
                assert targets.dtype == torch.int64 and targets.ndim == 1
                assert int(targets.min()) >= 0 and int(targets.max()) < available_dataset.num_classes

    def test_train_order_depends_only_on_seed_and_epoch(self, available_dataset):
        import torch

        def targets(**changes):
            return torch.cat([b[1] for b in self._batches(available_dataset, "train", **changes)])

        assert torch.equal(targets(seed=3, epoch=1), targets(seed=3, epoch=1))

    def test_val_shares_of_two_ranks_cover_the_split_once(self, available_dataset):
        whole = sum(b[1].shape[0] for b in self._batches(available_dataset, "val"))
        shares = [sum(b[1].shape[0] for b in self._batches(available_dataset, "val", rank=r, world_size=2))
                  for r in (0, 1)]
        assert sum(shares) == whole and abs(shares[0] - shares[1]) <= 1, (shares, whole)

    def test_evaluate_returns_the_metric(self, available_dataset):
        import torch

        batches = self._batches(available_dataset, "val")
        targets = torch.cat([b[1] for b in batches])
        groups = torch.cat([b[2] for b in batches]) if len(batches[0]) > 2 else None
        if getattr(available_dataset, "multilabel", False):
            outputs = targets.float() * 20 - 10  # confident and right
        else:
            outputs = torch.nn.functional.one_hot(targets, available_dataset.num_classes).float() * 10
        metrics = available_dataset.evaluate(outputs, targets, groups)
        assert available_dataset.metric_name in metrics, metrics
        assert all(isinstance(v, float) for v in metrics.values()), metrics


class CompilerContract(_RegisteredContract):
    """Conformance suite for a :class:`anbench.plugin_types.Compiler`; provide ``compiler``."""

    @pytest.fixture
    def compiler(self):
        pytest.fail("a CompilerContract subclass must define a `compiler` fixture")

    @pytest.fixture
    def registered(self, compiler):
        return compiler

    def test_targets_are_identifiers(self, compiler):
        targets = tuple(compiler.targets)
        assert targets, "a compiler must claim at least one target"
        assert len(set(targets)) == len(targets), f"duplicate targets in {targets}"
        for target in targets:
            assert isinstance(target, str) and _NAME_RE.match(target), target

    def test_compile_when_unavailable_is_an_anbench_error(self, compiler, tmp_path):
        from ..errors import AnbenchError
        from ..plugin_types import CompileRequest
        from ..searchspace import named

        if compiler.availability() is None:
            pytest.skip("the compiler is available here")
        with pytest.raises(AnbenchError) as info:
            compiler.compile(CompileRequest(named("smallest"), compiler.targets[0], tmp_path))
        assert _one_line(str(info.value))


class TrackerContract(_RegisteredContract):
    """Conformance suite for a :class:`anbench.plugin_types.Tracker`; provide ``tracker``.

    It checks the registration contract and the methods' presence; a plugin's own tests
    drive a real run (offline) through ``anbench train --<tracker>``.
    """

    @pytest.fixture
    def tracker(self):
        pytest.fail("a TrackerContract subclass must define a `tracker` fixture")

    @pytest.fixture
    def registered(self, tracker):
        return tracker

    def test_has_the_tracker_methods(self, tracker):
        for method in ("start", "log_epoch", "finish"):
            assert callable(getattr(tracker, method, None)), f"a tracker needs a {method}() method"
