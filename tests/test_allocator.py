"""The allocator settings of gmmplat.allocator: applied once, switchable, and in effect.

Each case runs in a fresh interpreter: the settings are process-wide.
"""
import os
import platform
import subprocess
import sys

import pytest

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# Frees a 24 MB block (its pages written) and prints how much resident memory that returned to the
# system: first with glibc's initial thresholds set explicitly (the control), then after
# keep_freed_memory().  Only ctypes and the module itself are used, not torch.
PROBE = r"""
import ctypes, os, sys
import importlib.util
spec = importlib.util.spec_from_file_location("allocator", os.path.join(sys.argv[1], "gmmplat", "allocator.py"))
allocator = importlib.util.module_from_spec(spec); spec.loader.exec_module(allocator)
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
def returned(n=24 << 20):
    p = libc.malloc(n)
    ctypes.memset(p, 1, n)
    before = rss()
    libc.free(p)
    return before - rss()
libc.mallopt(allocator.M_MMAP_THRESHOLD, 128 * 1024)  # glibc's initial values
libc.mallopt(allocator.M_TRIM_THRESHOLD, 128 * 1024)
control = returned()
applied = allocator.keep_freed_memory()
print(applied, control, returned(), allocator.keep_freed_memory())
"""


def run_probe(env_extra: dict) -> list[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GMMPLAT_KEEP_FREED_MEMORY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    env.update(env_extra)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", PROBE, root], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


@glibc_only
def test_settings_keep_a_freed_block_resident():
    applied, control, after, again = run_probe({})
    assert applied == "True" and again == "True"  # applied once; the second call reports the same
    assert int(control) > 20 << 20  # with glibc's initial thresholds the block goes back to the system
    assert int(after) < 1 << 20  # with the settings it stays for the next step's tensors


@glibc_only
@pytest.mark.parametrize("env", [{"GMMPLAT_KEEP_FREED_MEMORY": "0"}, {"MALLOC_TRIM_THRESHOLD_": "4096"}])
def test_switched_off_by_the_environment(env):
    applied, control, after, _ = run_probe(env)
    assert applied == "False"
    assert int(after) > 20 << 20  # the control's thresholds still hold: nothing was set


def test_does_nothing_without_glibc(monkeypatch):
    import gmmplat.allocator as allocator

    monkeypatch.setattr(allocator, "_state", {"done": False, "applied": False})
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert allocator.keep_freed_memory() is False
