"""Tests read MNIST from ../shared/data (or $NAS_DATA_DIR) and cache it in a temp folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("NAS_DATA_DIR", REPO.parent / "shared" / "data")).resolve()
# Where the library-level tests keep their data and train: "cpu" (CI has no GPU), or
# NAS_TEST_DEVICE=cuda on a GPU machine (bench/gpu_check.sh). CLI tests take `--device auto`.
DEVICE = os.environ.get("NAS_TEST_DEVICE", "cpu")


def pytest_configure(config):
    os.environ["NAS_DATA_DIR"] = str(DATA_DIR)
    # One decompressed copy per test session, shared with the subprocesses tests start.
    cache = Path(os.environ.get("NAS_TEST_CACHE", "/tmp/nas-test-cache"))
    os.environ["NAS_CACHE_DIR"] = str(cache)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # pytest -n N: N workers share the cores, so each (and the processes its tests start)
        # gets one thread; set before torch is imported in this worker
        os.environ["OMP_NUM_THREADS"] = "1"


# The longest files first, so that `pytest -n 2 --dist loadfile --no-loadscope-reorder` (make
# test) hands them out longest-first and both workers end together. (xdist's own order, by
# number of tests, started the longest file last.) Times: bench/test_suite_cpu_zen3.txt. A file
# not named here only runs later.
LONGEST_FIRST = ("test_search_procs.py", "test_report_export.py", "test_search.py",
                 "test_train.py", "test_cli.py", "test_postgres.py", "test_datasets.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the tests of a file keep their order


@pytest.fixture(scope="session")
def data_dir() -> str:
    if not (DATA_DIR / "MNIST" / "raw").is_dir():
        pytest.fail(f"MNIST not found at {DATA_DIR}/MNIST/raw (set NAS_DATA_DIR)")
    return str(DATA_DIR)


@pytest.fixture(scope="session")
def mnist(data_dir):
    from nas.data import load_mnist

    return load_mnist(data_dir, DEVICE, 2000)
