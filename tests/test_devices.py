import pytest
import torch

from napari_attnseg import devices
from napari_attnseg.errors import DeviceError


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
