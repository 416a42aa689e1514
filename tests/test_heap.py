"""nas.heap: glibc told to keep freed memory, once per process, with an opt-out."""

import os
import platform
import subprocess
import sys

import pytest

# a fresh interpreter each: the settings are made once per process
CHECK = """
import ctypes, resource, sys
from nas.heap import keep_freed_memory
ok = keep_freed_memory()
assert keep_freed_memory() is ok  # once: the second call answers the same
# what the settings are for: a step's pattern, three 4 MiB buffers live at once, then all
# freed. By default glibc trims the heap's free top (over twice its adaptive mmap threshold),
# so each round faults the pages in again; kept, they are reused
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
n = 4 << 20
def touch():
    ps = [libc.malloc(n) for _ in range(3)]
    for p in ps:
        ctypes.memset(p, 1, n)
    for p in ps:
        libc.free(p)
touch()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    touch()
print(ok, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
"""


def run(env_value):
    env = {k: v for k, v in os.environ.items() if k != "NAS_KEEP_HEAP"}
    if env_value is not None:
        env["NAS_KEEP_HEAP"] = env_value
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_keeps_freed_memory_unless_told_not_to():
    kept, faults_kept = run(None)
    off, faults_off = run("0")
    assert kept and not off
    # 20 rounds of 3 x 1,024 pages: given back, each round faults most in again; kept, none
    assert faults_off >= 20 * 1000
    assert faults_kept < 200
