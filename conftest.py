"""Settings for every test of the repository (core and plugins), read before any test module."""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core: each gets one intra-op thread, set before torch
    # starts its OpenMP pool, so workers never oversubscribe the cores (and subprocesses
    # the tests start inherit the same setting).
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
