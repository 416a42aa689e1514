"""The repository itself: a fresh clone stays light (issue 17: a working tree of at most 20 MB)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 20_000_000  # bytes of tracked files, which is what a clone checks out


def test_a_clone_stays_under_20_mb():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.split(b"\0")
    sizes = {f.decode(): (ROOT / f.decode()).stat().st_size for f in files
             if f and (ROOT / f.decode()).is_file()}
    total = sum(sizes.values())
    big = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    assert total <= LIMIT, (f"tracked files take {total / 1e6:.1f} MB (limit 20 MB); largest: "
                            f"{big}; archive committed studies with nas archive")
