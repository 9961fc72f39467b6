"""Split a plane into overlapping tiles and blend per-tile predictions back smoothly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A window of the padded plane: rows ``y:y+size_y`` and columns ``x:x+size_x``."""

    y: int
    x: int
    size_y: int
    size_x: int

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y, self.y + self.size_y), slice(self.x, self.x + self.size_x)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _spread(length: int, tile: int, overlap: int, multiple: int) -> tuple[int, list[int]]:
    """The edge and starts of the fewest tiles of at most ``tile`` pixels that cover ``length`` with
    at least ``overlap`` shared between neighbours, spread evenly.

    Fixed strides with a last tile flush against the edge compute much twice: 512 pixels in tiles
    of 256 took 3 tiles (768 pixels) where 3 tiles of 192 do. ``length`` and ``tile`` are multiples
    of the network's size multiple and so is every start, so pooling sees the same pixels as in a
    whole-image pass.
    """
    if length <= tile:
        return length, [0]
    step = min(_round_up(overlap, multiple), tile - multiple)  # the overlap on the grid of the starts
    count = -(-(length - step) // (tile - step))
    edge = min(tile, _round_up(-(-(length + (count - 1) * step) // count), multiple))
    span = length - edge
    starts = [index * span // (count - 1) // multiple * multiple for index in range(count)]
    starts[-1] = span
    return edge, starts


class TileGrid:
    """Tiles covering a (Y, X) plane, padded up to the network's multiple.

    Args:
        shape: plane height and width.
        tile_size: the largest tile edge; rounded down to ``multiple``. Tiles are as large as needed
            to cover the plane with the fewest of them, evenly spread, and no larger.
        overlap: the fewest pixels shared by neighbouring tiles (rounded up to ``multiple``).
        multiple: the network's size multiple; tile starts and sizes stay on this grid.
    """

    def __init__(self, shape: tuple[int, int], tile_size: int, overlap: int, multiple: int) -> None:
        self.shape = tuple(int(side) for side in shape)
        self.padded_shape = tuple(-(-side // multiple) * multiple for side in self.shape)
        tile = max(multiple, tile_size - tile_size % multiple)
        overlap = min(overlap, tile // 2)
        self.tile_y, ys = _spread(self.padded_shape[0], tile, overlap, multiple)
        self.tile_x, xs = _spread(self.padded_shape[1], tile, overlap, multiple)
        self.overlap = overlap
        self.tiles = [Tile(y, x, self.tile_y, self.tile_x) for y in ys for x in xs]

    def __len__(self) -> int:
        return len(self.tiles)

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.tiles)

    def pad(self, plane: np.ndarray) -> np.ndarray:
        """Pad a (..., Y, X) array to the canvas by reflection (replication if too small)."""
        pad_y = self.padded_shape[0] - plane.shape[-2]
        pad_x = self.padded_shape[1] - plane.shape[-1]
        widths = [(0, 0)] * (plane.ndim - 2) + [(0, pad_y), (0, pad_x)]
        mode = "reflect" if pad_y < plane.shape[-2] and pad_x < plane.shape[-1] else "edge"
        return np.pad(plane, widths, mode=mode)

    def weights(self) -> np.ndarray:
        """Blending window (size_y, size_x): 1 in the middle, a cosine ramp over the overlap."""
        return np.outer(_ramp(self.tile_y, self.overlap), _ramp(self.tile_x, self.overlap))


def _ramp(length: int, overlap: int) -> np.ndarray:
    window = np.ones(length, dtype=np.float32)
    if overlap <= 0:
        return window
    ramp = min(overlap, length // 2)
    # Never exactly zero, so a pixel covered by one tile's edge alone still gets a prediction.
    rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp, dtype=np.float32) + 0.5) / ramp)
    window[:ramp] = rise
    window[length - ramp:] = rise[::-1]
    return window


class Blender:
    """Accumulates weighted tile predictions (C, Y, X) and returns their normalised blend."""

    def __init__(self, grid: TileGrid, channels: int) -> None:
        self.grid = grid
        self.window = grid.weights()
        self.total = np.zeros((channels, *grid.padded_shape), dtype=np.float32)
        self.weight = np.zeros(grid.padded_shape, dtype=np.float32)

    def add(self, tile: Tile, prediction: np.ndarray) -> None:
        rows, cols = tile.slices
        self.total[:, rows, cols] += prediction * self.window
        self.weight[rows, cols] += self.window

    def result(self) -> np.ndarray:
        """The blend (C, Y, X), computed in place: the accumulator is not usable afterwards."""
        height, width = self.grid.shape
        np.divide(self.total, self.weight, out=self.total)  # no second plane-sized array
        blended = self.total[:, :height, :width]
        return blended if blended.flags.c_contiguous else np.ascontiguousarray(blended)
