"""Tile and batch sizes from the memory budget, and retrying with smaller tiles after an allocation error."""

import logging

import numpy as np
import pytest
import torch

import napari_attnseg as nas
from napari_attnseg.config import InferConfig, ModelConfig
from napari_attnseg.errors import OutOfMemory
from napari_attnseg.inference.predict import drain, predict_steps
from napari_attnseg.runtime import memory
from napari_attnseg.runtime.memory import TilePlan, is_out_of_memory, plan_tiles

CPU = torch.device("cpu")
CUDA = torch.device("cuda")  # a device object only: nothing runs on it here
DEFAULT = ModelConfig()


def _per_tile_mb(tile: int) -> float:
    return memory.activation_bytes_per_pixel(DEFAULT) * tile * tile / 1024**2


def test_a_roomy_budget_keeps_the_asked_tile_and_four_tiles_per_batch_on_a_cpu():
    plan = plan_tiles(DEFAULT, InferConfig(tile_size=256, memory_budget_mb=4096), CPU)
    assert plan == TilePlan(256, 32, 4)


def test_a_cpu_batch_holds_up_to_four_256_tiles_worth_of_pixels_and_four_tiles():
    assert plan_tiles(DEFAULT, InferConfig(tile_size=128, memory_budget_mb=4096), CPU).batch_size == 4
    assert plan_tiles(DEFAULT, InferConfig(tile_size=512, memory_budget_mb=4096), CPU).batch_size == 1
    assert plan_tiles(DEFAULT, InferConfig(memory_budget_mb=4096), CPU) == TilePlan(768, 32, 1)


def test_a_small_budget_shrinks_the_tile_until_one_fits():
    budget = int(_per_tile_mb(128)) + 1  # a 128 tile fits, a 256 one does not
    plan = plan_tiles(DEFAULT, InferConfig(tile_size=512, overlap=64, memory_budget_mb=budget), CPU)
    assert plan.tile_size == 128 and plan.batch_size == 1
    assert plan.overlap <= plan.tile_size // 4
    assert memory.activation_bytes_per_pixel(DEFAULT) * plan.tile_size**2 <= budget * 1024**2


def test_a_gpu_batches_as_many_tiles_as_fit(monkeypatch):
    free = int(_per_tile_mb(256) * 10.5 * 2 * 1024**2)  # half of it is planned for: 10 tiles
    monkeypatch.setattr(memory, "available_bytes", lambda device: free)
    assert plan_tiles(DEFAULT, InferConfig(tile_size=256), CUDA).batch_size == 10
    monkeypatch.setattr(memory, "available_bytes", lambda device: 100 * free)
    assert plan_tiles(DEFAULT, InferConfig(tile_size=256), CUDA).batch_size == memory.GPU_MAX_BATCH
    assert plan_tiles(DEFAULT, InferConfig(tile_size=256, batch_size=3), CUDA).batch_size == 3


def test_smaller_halves_the_batch_first_then_the_tile_and_ends():
    plan = TilePlan(256, 32, 4)
    seen = []
    while plan is not None:
        seen.append((plan.tile_size, plan.batch_size))
        plan = plan.smaller(multiple=8)
    assert seen == [(256, 4), (256, 2), (256, 1), (128, 1), (64, 1)]


@pytest.mark.parametrize("error, expected", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
    (MemoryError(), True),
    (RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory"), True),
    (RuntimeError("MPS backend out of memory"), True),
    (RuntimeError("shapes cannot be multiplied"), False),
    (ValueError("out of memory"), False),
])
def test_allocation_failures_are_told_apart_from_other_errors(error, expected):
    assert is_out_of_memory(error) is expected


class _SmallMemoryNetwork(torch.nn.Module):
    """Runs the real network, but fails like an exhausted allocator above ``max_pixels`` per batch."""

    def __init__(self, network, max_pixels):
        super().__init__()
        self.inner = network
        self.max_pixels = max_pixels
        self.failures = 0

    def forward(self, tensor, return_attention=False):
        if tensor.shape[0] * tensor.shape[-1] * tensor.shape[-2] > self.max_pixels:
            self.failures += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        return self.inner(tensor, return_attention=return_attention)


def test_an_allocation_error_is_retried_with_smaller_tiles_and_gives_the_same_result(caplog):
    model = nas.load_model()
    image, _ = nas.synthetic_nuclei((300, 260), seed=4, radius_range=(8.0, 11.0))
    # a plan that does not depend on this machine's free memory; the object size given, so both runs
    # rescale alike (an estimate probed with other tiles may differ a little)
    config = InferConfig(tile_size=256, overlap=32, batch_size=4, device="cpu", precision="fp32",
                         memory_budget_mb=4096, diameter=model.config.diameter)
    reference = drain(predict_steps(image, model, config)).probabilities
    small = model.copy()
    small.network = _SmallMemoryNetwork(model.network, max_pixels=128 * 128)
    reports = []
    with caplog.at_level(logging.WARNING, logger="napari_attnseg.inference.predict"):
        prediction = drain(predict_steps(image, small, config), reports.append)
    assert small.network.failures == 3  # 4, 2 and 1 tiles of 256 failed; tiles of 128 fit
    assert "retrying" in caplog.text
    assert reports[-1].done == reports[-1].total
    difference = np.abs(prediction.probabilities - reference)  # other tiles, other seams
    assert difference.mean() < 0.005 and difference.max() < 0.5
    labels = nas.segment(image, small, config)
    assert nas.evaluate(labels, nas.segment(image, model, config))["ap50"] > 0.95


def test_running_out_of_memory_with_the_smallest_tile_is_one_clear_error():
    model = nas.load_model()
    model.network = _SmallMemoryNetwork(model.network, max_pixels=16)
    image, _ = nas.synthetic_nuclei((128, 128), seed=4)
    with pytest.raises(OutOfMemory, match="not enough memory .* segment-zarr"):
        nas.segment(image, model, InferConfig(device="cpu"))
