"""Helpers for the tests that start, signal and outlive processes."""

from __future__ import annotations

import time
from pathlib import Path


def alive(pid: int) -> bool:
    """The process runs: an exited orphan may linger as a zombie where pid 1 does not reap."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def wait_for(pred, timeout: float = 120) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")
