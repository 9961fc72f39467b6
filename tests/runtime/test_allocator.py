"""The malloc settings that keep freed activations for the next forward pass."""

import ctypes
import sys

import pytest

from napari_attnseg.runtime import allocator


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setitem(allocator._STATE, "done", False)
    monkeypatch.setitem(allocator._STATE, "tuned", False)


def test_settings_are_made_once_and_only_on_linux_glibc(fresh, monkeypatch):
    calls = []

    class Mallopt:  # takes argtypes and restype like a ctypes function
        def __call__(self, parameter, value):
            calls.append((parameter, value))
            return 1

    class FakeLibc:
        mallopt = Mallopt()

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True  # once per process
    assert calls == [(allocator.M_MMAP_THRESHOLD, 32 * 1024**2), (allocator.M_TRIM_THRESHOLD, 256 * 1024**2)]


def test_the_environment_can_turn_it_off(fresh, monkeypatch):
    monkeypatch.setenv("ATTNSEG_MALLOC_TUNING", "0")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: pytest.fail("libc must not be touched"))
    assert allocator.keep_freed_memory() is False


def test_no_glibc_means_no_settings(fresh, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")

    def missing(name):
        raise OSError(name)

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert allocator.keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_real_glibc_takes_the_settings(fresh):
    try:
        has_mallopt = hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        has_mallopt = False
    if not has_mallopt:
        pytest.skip("no glibc")
    assert allocator.keep_freed_memory() is True
