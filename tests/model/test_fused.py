"""The inference-only network (batch norm folded, ReLU fused) gives the training network's outputs."""

import numpy as np
import pytest
import torch

import napari_attnseg as nas
from napari_attnseg.config import InferConfig, ModelConfig
from napari_attnseg.files.modelfile import new_model
from napari_attnseg.model import fused as fused_module
from napari_attnseg.model.fused import fuse_for_inference, inference_network

CPU = torch.device("cpu")


def _randomised_norms(network):
    """Batch norms with non-trivial statistics, as after training (a fresh one is the identity)."""
    generator = torch.Generator().manual_seed(0)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(size, generator=generator) * 0.2)
    return network.eval()


@pytest.mark.parametrize("attention", ["gate", "se", "nonlocal", "none"])
@pytest.mark.parametrize("onednn", [True, False])
def test_fused_network_matches_the_original_in_fp32(attention, onednn, monkeypatch):
    if onednn and not fused_module._has_onednn_pointwise():
        pytest.skip("this torch build has no oneDNN fused convolution")
    monkeypatch.setitem(fused_module._ONEDNN, "usable", onednn)
    network = _randomised_norms(new_model(ModelConfig(base_width=8, depth=3, attention=attention)).network)
    image = torch.randn(2, 1, 40, 56).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        expected, expected_maps = network(image, return_attention=True)
        actual, actual_maps = fuse_for_inference(network)(image, return_attention=True)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
    for actual_map, expected_map in zip(actual_maps, expected_maps):
        torch.testing.assert_close(actual_map, expected_map, rtol=1e-4, atol=1e-4)


def test_fused_network_in_bf16_gives_the_labels_of_fp32():
    model = nas.load_model()
    image, _ = nas.synthetic_nuclei((192, 192), seed=6, radius_range=(8.0, 12.0))
    exact = nas.segment(image, model, InferConfig(precision="fp32"))
    fast = nas.segment(image, model, InferConfig(precision="bf16"))
    assert nas.evaluate(fast, exact)["ap50"] > 0.95


def test_the_copy_is_rebuilt_when_the_weights_change_and_reused_otherwise():
    model = new_model(ModelConfig(base_width=8, depth=3))
    first = inference_network(model.network, CPU)
    assert inference_network(model.network, CPU) is first
    with torch.no_grad():
        model.network.head.bias.add_(1.0)  # what an optimiser step does: an in-place update
    second = inference_network(model.network, CPU)
    assert second is not first
    image = torch.zeros(1, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        torch.testing.assert_close(second(image), model.network.eval()(image), rtol=1e-4, atol=1e-4)


def test_the_training_network_is_left_as_it_was():
    model = new_model(ModelConfig(base_width=8, depth=3))
    before = {key: value.clone() for key, value in model.network.state_dict().items()}
    inference_network(model.network, CPU)
    after = model.network.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert any(isinstance(module, torch.nn.BatchNorm2d) for module in model.network.modules())


def _fused_kernel_raising(monkeypatch, message: str) -> None:
    """Make the oneDNN fused kernel (said to be usable) fail with ``message``."""
    if not fused_module._has_onednn_pointwise():
        pytest.skip("this torch build has no oneDNN fused convolution")

    def failing(*args):
        raise RuntimeError(message)

    monkeypatch.setitem(fused_module._ONEDNN, "usable", True)
    monkeypatch.setattr(torch.ops.mkldnn, "_convolution_pointwise", failing, raising=False)


def test_a_failing_fused_kernel_falls_back_to_separate_ones(monkeypatch):
    _fused_kernel_raising(monkeypatch, "mkldnn_convolution_pointwise: bf16 path needs the cpu support avx512bw")
    network = new_model(ModelConfig(base_width=8, depth=3)).network.eval()
    image = torch.randn(1, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        np.testing.assert_allclose(fuse_for_inference(network)(image).numpy(), network(image).numpy(),
                                   rtol=1e-4, atol=1e-4)
    assert fused_module._ONEDNN["usable"] is False


def test_a_model_loaded_under_inference_mode_still_segments():
    image, _ = nas.synthetic_nuclei((96, 96), seed=2)
    with torch.inference_mode():  # a notebook habit: its weights then carry no version counters
        model = nas.load_model()
        inside = nas.segment(image, model)
    np.testing.assert_array_equal(nas.segment(image, model), inside)


def test_running_out_of_memory_in_the_fused_kernel_keeps_the_kernel(monkeypatch):
    _fused_kernel_raising(monkeypatch, "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")
    network = fuse_for_inference(new_model(ModelConfig(base_width=8, depth=3)).network)
    image = torch.randn(1, 1, 32, 32).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="can't allocate memory"):
        network(image)
    assert fused_module._ONEDNN["usable"] is True
