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


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    # length, tile and stride are multiples of the network's size multiple, so every start is on
    # its grid and pooling sees the same pixels as in a whole-image pass.
    starts = list(range(0, length - tile, stride))
    last = length - tile
    if not starts or starts[-1] != last:
        starts.append(last)
    return starts


class TileGrid:
    """Tiles covering a (Y, X) plane, padded up to the network's multiple.

    Args:
        shape: plane height and width.
        tile_size: requested tile edge; rounded down to ``multiple`` (and clipped to the padded plane).
        overlap: pixels shared by neighbouring tiles.
        multiple: the network's size multiple; tile starts and sizes stay on this grid.
    """

    def __init__(self, shape: tuple[int, int], tile_size: int, overlap: int, multiple: int) -> None:
        self.shape = tuple(int(side) for side in shape)
        self.padded_shape = tuple(-(-side // multiple) * multiple for side in self.shape)
        tile = max(multiple, tile_size - tile_size % multiple)
        self.tile_y = min(tile, self.padded_shape[0])
        self.tile_x = min(tile, self.padded_shape[1])
        stride_y = max(multiple, (self.tile_y - overlap) // multiple * multiple)
        stride_x = max(multiple, (self.tile_x - overlap) // multiple * multiple)
        self.overlap = overlap
        ys = _starts(self.padded_shape[0], self.tile_y, stride_y)
        xs = _starts(self.padded_shape[1], self.tile_x, stride_x)
        self.canvas_shape = self.padded_shape
        self.tiles = [Tile(y, x, self.tile_y, self.tile_x) for y in ys for x in xs]

    def __len__(self) -> int:
        return len(self.tiles)

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.tiles)

    def pad(self, plane: np.ndarray) -> np.ndarray:
        """Pad a (..., Y, X) array to the canvas by reflection (replication if too small)."""
        pad_y = self.canvas_shape[0] - plane.shape[-2]
        pad_x = self.canvas_shape[1] - plane.shape[-1]
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
        self.total = np.zeros((channels, *grid.canvas_shape), dtype=np.float32)
        self.weight = np.zeros(grid.canvas_shape, dtype=np.float32)

    def add(self, tile: Tile, prediction: np.ndarray) -> None:
        rows, cols = tile.slices
        self.total[:, rows, cols] += prediction * self.window
        self.weight[rows, cols] += self.window

    def result(self) -> np.ndarray:
        height, width = self.grid.shape
        blended = self.total[:, :height, :width] / self.weight[:height, :width]
        return blended.astype(np.float32, copy=False)
