"""Tests read MNIST from ../shared/data (or $NAS_DATA_DIR) and cache it in a temp folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("NAS_DATA_DIR", REPO.parent / "shared" / "data")).resolve()


def pytest_configure(config):
    os.environ["NAS_DATA_DIR"] = str(DATA_DIR)
    # One decompressed copy per test session, shared with the subprocesses tests start.
    cache = Path(os.environ.get("NAS_TEST_CACHE", "/tmp/nas-test-cache"))
    os.environ["NAS_CACHE_DIR"] = str(cache)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # pytest -n N: N workers share the cores, so each (and the processes its tests start)
        # gets one thread; set before torch is imported in this worker
        os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def data_dir() -> str:
    if not (DATA_DIR / "MNIST" / "raw").is_dir():
        pytest.fail(f"MNIST not found at {DATA_DIR}/MNIST/raw (set NAS_DATA_DIR)")
    return str(DATA_DIR)


@pytest.fixture(scope="session")
def mnist(data_dir):
    from nas.data import load_mnist

    return load_mnist(data_dir, "cpu", 2000)
