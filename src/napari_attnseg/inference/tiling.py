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
        """Pad a (..., Y, X) array to the canvas by reflection (replication if too small); the array
        itself when it needs no padding."""
        pad_y = self.padded_shape[0] - plane.shape[-2]
        pad_x = self.padded_shape[1] - plane.shape[-1]
        if pad_y == 0 and pad_x == 0:
            return plane
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
    """Accumulates weighted tile predictions (C, Y, X) and returns their normalised blend.

    Tiles come row by row (as TileGrid lists them), so only a band one tile high is accumulated:
    the rows above the next row of tiles are final, and go, divided by their weights, into the
    output (of ``dtype``). A plane-sized float32 accumulator and its weights were ~1.1 GB for an
    8192² image of 3 classes.
    """

    def __init__(self, grid: TileGrid, channels: int, dtype=np.float32) -> None:
        self.grid = grid
        self.window = grid.weights()
        self.output = np.empty((channels, *grid.shape), dtype=dtype)
        self.top = 0  # the plane row the band's first row is
        self.total = np.zeros((channels, grid.tile_y, grid.padded_shape[1]), dtype=np.float32)
        self.weight = np.zeros((grid.tile_y, grid.padded_shape[1]), dtype=np.float32)

    def add(self, tile: Tile, prediction: np.ndarray) -> None:
        if tile.y < self.top:
            raise ValueError("tiles must come row by row, as the grid lists them")
        if tile.y > self.top:
            self._advance(tile.y)
        cols = slice(tile.x, tile.x + tile.size_x)
        self.total[:, : tile.size_y, cols] += prediction * self.window
        self.weight[: tile.size_y, cols] += self.window

    def _write(self, rows: int) -> None:
        """Rows [top, top + rows) are final: divide them into the output (the padding dropped)."""
        height, width = self.grid.shape
        rows = min(rows, self.weight.shape[0], height - self.top)
        if rows > 0:
            np.divide(self.total[:, :rows, :width], self.weight[:rows, :width],
                      out=self.output[:, self.top: self.top + rows], casting="unsafe")

    def _advance(self, new_top: int) -> None:
        step = new_top - self.top
        self._write(step)
        band = self.weight.shape[0]
        if step < band:  # the rows the next tiles overlap move up; numpy copies overlapping slices safely
            self.total[:, : band - step] = self.total[:, step:]
            self.weight[: band - step] = self.weight[step:]
        self.total[:, max(band - step, 0):] = 0.0
        self.weight[max(band - step, 0):] = 0.0
        self.top = new_top

    def result(self) -> np.ndarray:
        """The blend (C, Y, X); the blender is not usable afterwards."""
        self._write(self.weight.shape[0])
        return self.output
