import pytest
import torch

from napari_attnseg.errors import DeviceError
from napari_attnseg.runtime import devices


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]
)
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(devices, "cuda_available", lambda: cuda)
    monkeypatch.setattr(devices, "mps_available", lambda: mps)
    assert devices.resolve_device("auto").type == expected


def test_explicit_gpu_that_is_absent_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    with pytest.raises(DeviceError, match="no usable CUDA"):
        devices.resolve_device("cuda")
    with pytest.raises(DeviceError, match="Metal"):
        devices.resolve_device("mps")
    with pytest.raises(DeviceError, match="unknown device"):
        devices.resolve_device("tpu")


def test_precision_choice(monkeypatch):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert devices.autocast_dtype(cuda, "auto") == torch.float16
    assert devices.autocast_dtype(cpu, "fp32") is None
    monkeypatch.setattr(devices, "cpu_supports_bf16", lambda: True)
    assert devices.autocast_dtype(cpu, "auto") == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_supports_bf16", lambda: False)
    assert devices.autocast_dtype(cpu, "auto") is None
    assert devices.autocast_dtype(cpu, "fp16") == torch.bfloat16  # the CPU's half precision


def test_host_to_device_gives_channels_last_images_on_a_cpu_and_pins_for_cuda(monkeypatch):
    import numpy as np
    import torch

    from napari_attnseg.runtime.devices import host_to_device

    images = np.random.default_rng(0).random((2, 3, 8, 8), dtype=np.float32)
    on_cpu = host_to_device(images, torch.device("cpu"))
    assert on_cpu.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(on_cpu.numpy(), images)
    assert host_to_device(np.zeros((2, 8, 8), np.int64), torch.device("cpu")).shape == (2, 8, 8)

    # No CUDA here: record what the CUDA branch asks of the tensor instead of running it.
    calls = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: calls.append("pin") or self)
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *args, **kwargs: calls.append(kwargs) or self)
    host_to_device(images, torch.device("cuda"))
    assert calls == ["pin", {"non_blocking": True}]
