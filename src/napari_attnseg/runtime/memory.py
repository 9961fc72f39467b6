"""How big a tile and batch fit in memory, and what to do when an allocation fails anyway."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch

from ..config import InferConfig, ModelConfig

log = logging.getLogger(__name__)

# Peak activation memory of one forward pass, per input pixel and per channel of the first level:
# measured on this project's CPU build machine as 544-692 bytes per pixel for base width 16 in fp32
# (304-403 in bf16), i.e. up to ~44 bytes per pixel per base channel; 48 leaves some room.
BYTES_PER_PIXEL_PER_BASE_CHANNEL = 48
# Only this share of the free memory is planned for; the rest is for the image, its probabilities,
# the blending buffers and everything else running on the machine.
USABLE_SHARE = 0.5
GPU_MAX_BATCH = 32
# A CPU gains nothing from bigger batches (measured): its threads already fill one tile. So a batch
# holds at most four tiles' worth of 256² pixels (one tile of 768²), and at most four tiles, so that
# progress and Cancel come often.
CPU_BATCH_PIXELS = 4 * 256 * 256
CPU_BATCH = 4
MIN_TILE = 64


@dataclass(frozen=True)
class TilePlan:
    """Tile edge, overlap and batch size for one prediction."""

    tile_size: int
    overlap: int
    batch_size: int

    def smaller(self, multiple: int) -> TilePlan | None:
        """The plan to retry with after running out of memory: half the batch, then half the tile."""
        if self.batch_size > 1:
            return TilePlan(self.tile_size, self.overlap, self.batch_size // 2)
        smallest = max(MIN_TILE, multiple)
        if self.tile_size <= smallest:
            return None
        tile = max(smallest, (self.tile_size // 2) // multiple * multiple)
        return TilePlan(tile, min(self.overlap, tile // 4), 1)


def available_bytes(device: torch.device) -> int:
    """Memory free for new tensors on ``device`` (the system's available memory for cpu and mps)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return _system_available_bytes()


def _system_available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # macOS and Windows lack these names
        return 8 * 1024**3


def activation_bytes_per_pixel(model_config: ModelConfig) -> int:
    return BYTES_PER_PIXEL_PER_BASE_CHANNEL * model_config.base_width


def plan_tiles(model_config: ModelConfig, config: InferConfig, device: torch.device) -> TilePlan:
    """The largest tile (up to ``config.tile_size``) and batch that fit the memory budget.

    The budget is ``config.memory_budget_mb`` when set, else half of what ``device`` has free now.
    ``config.batch_size`` 0 means: up to ``CPU_BATCH_PIXELS`` worth of tiles on a CPU, as many as fit (up
    to 32) on a GPU.
    """
    if config.memory_budget_mb:
        usable = config.memory_budget_mb * 1024**2
    else:
        usable = int(available_bytes(device) * USABLE_SHARE)
    per_pixel = activation_bytes_per_pixel(model_config)
    multiple = model_config.multiple
    plan = TilePlan(config.tile_size, config.overlap, 1)
    while per_pixel * plan.tile_size**2 > usable:
        smaller = plan.smaller(multiple)
        if smaller is None:
            break
        plan = smaller
    fits = max(1, usable // (per_pixel * plan.tile_size**2))
    cpu_batch = min(CPU_BATCH, max(1, CPU_BATCH_PIXELS // plan.tile_size**2))
    wanted = config.batch_size or (cpu_batch if device.type == "cpu" else GPU_MAX_BATCH)
    plan = TilePlan(plan.tile_size, plan.overlap, int(min(wanted, fits)))
    if plan.tile_size < config.tile_size:
        log.info("memory budget %.0f MB: tiles of %d pixels instead of %d", usable / 1024**2,
                 plan.tile_size, config.tile_size)
    return plan


def is_out_of_memory(error: BaseException) -> bool:
    """True for an allocation failure on any device (CUDA, MPS, the CPU allocator or numpy)."""
    if isinstance(error, (MemoryError, torch.OutOfMemoryError)):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in message or "can't allocate memory" in message or "failed to allocate" in message
    )


def release_cached_memory(device: torch.device) -> None:
    """Give cached blocks back after an allocation failure, so a smaller retry can use them."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
