import numpy as np
import pytest
import torch

from napari_attnseg.config import InferConfig, ModelConfig
from napari_attnseg.files.modelfile import new_model
from napari_attnseg.inference.inputs import normalize
from napari_attnseg.inference.predict import predict
from napari_attnseg.inference.tiling import Blender, TileGrid


@pytest.mark.parametrize("shape", [(5, 7), (64, 64), (100, 300), (257, 129)])
def test_tiles_cover_every_pixel(shape):
    grid = TileGrid(shape, tile_size=64, overlap=16, multiple=8)
    covered = np.zeros(grid.padded_shape, dtype=int)
    for tile in grid:
        assert tile.y % 8 == 0 and tile.x % 8 == 0
        covered[tile.slices] += 1
    assert covered[: shape[0], : shape[1]].min() >= 1


@pytest.mark.parametrize("length", [16, 100, 256, 300, 512, 513, 1000, 2048, 5000])
@pytest.mark.parametrize("tile, overlap", [(256, 32), (768, 32), (64, 16), (48, 24), (16, 8)])
def test_tiles_are_the_fewest_evenly_spread_ones_that_keep_the_overlap(length, tile, overlap):
    grid = TileGrid((length, 40), tile_size=tile, overlap=overlap, multiple=16)
    padded = grid.padded_shape[0]
    starts = sorted({t.y for t in grid})
    assert grid.tile_y <= tile and grid.tile_y % 16 == 0 and starts[0] == 0
    assert all(start % 16 == 0 for start in starts) and starts[-1] + grid.tile_y == padded
    gaps = np.diff(starts)
    assert all(grid.tile_y - gap >= min(overlap, tile - 16) for gap in gaps)  # neighbours share >= overlap
    if len(gaps):
        assert gaps.max() - gaps.min() <= 16  # evenly spread
    # one tile fewer, at the largest size, could not cover the plane with that overlap
    step = -(-min(overlap, tile - 16) // 16) * 16
    fewer = len(starts) - 1
    assert fewer == 0 or fewer * tile - (fewer - 1) * min(step, tile - 16) < padded


def test_tiles_shrink_to_what_the_plane_needs():
    assert (TileGrid((512, 512), 256, 32, 16).tile_y, len(TileGrid((512, 512), 256, 32, 16))) == (192, 9)
    assert (TileGrid((2048, 2048), 768, 32, 16).tile_y, len(TileGrid((2048, 2048), 768, 32, 16))) == (704, 9)
    assert len(TileGrid((700, 700), 768, 32, 16)) == 1


def test_blend_of_constant_tiles_is_constant():
    grid = TileGrid((150, 170), tile_size=64, overlap=24, multiple=8)
    blender = Blender(grid, channels=2)
    for tile in grid:
        blender.add(tile, np.full((2, tile.size_y, tile.size_x), 3.0, dtype=np.float32))
    np.testing.assert_allclose(blender.result(), 3.0, rtol=1e-5)


def _model_with_nontrivial_norm_stats():
    model = new_model(ModelConfig(base_width=4, depth=3), seed=1)
    generator = torch.Generator().manual_seed(0)
    for module in model.network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=generator)
            module.running_var.uniform_(0.5, 1.5, generator=generator)
    return model


def test_tiled_prediction_matches_whole_image_away_from_borders():
    model = _model_with_nontrivial_norm_stats()
    rng = np.random.default_rng(0)
    image = rng.normal(size=(200, 232)).astype(np.float32)
    tiled = predict(image, model, InferConfig(tile_size=96, overlap=32, batch_size=3, device="cpu"))
    normalised = normalize(image[np.newaxis], model.config.norm_percentiles)
    with torch.no_grad():
        whole = torch.softmax(model.network.eval()(torch.from_numpy(normalised[np.newaxis])), 1)[0].numpy()
    interior = (slice(None), slice(24, -24), slice(24, -24))
    assert np.abs(tiled.probabilities - whole)[interior].max() < 1e-3
    assert tiled.probabilities.shape == (3, 200, 232)


def test_image_smaller_than_a_tile():
    model = new_model(ModelConfig(base_width=4, depth=3))
    prediction = predict(np.ones((9, 13)) + np.eye(9, 13), model, InferConfig(tile_size=64, device="cpu"))
    assert prediction.probabilities.shape == (3, 9, 13)
    np.testing.assert_allclose(prediction.probabilities.sum(0), 1.0, rtol=1e-5)


def test_the_banded_blend_equals_a_whole_plane_blend():
    """Rows are written out as soon as no later tile covers them; the result is the plain blend."""
    rng = np.random.default_rng(0)
    grid = TileGrid((150, 170), tile_size=64, overlap=24, multiple=8)
    blender = Blender(grid, channels=2)
    total = np.zeros((2, *grid.padded_shape))
    weight = np.zeros(grid.padded_shape)
    for tile in grid:
        prediction = rng.random((2, tile.size_y, tile.size_x)).astype(np.float32)
        blender.add(tile, prediction)
        total[:, tile.slices[0], tile.slices[1]] += prediction * grid.weights()
        weight[tile.slices] += grid.weights()
    expected = (total / weight)[:, :150, :170]
    np.testing.assert_allclose(blender.result(), expected, rtol=1e-5, atol=1e-6)


def test_the_blend_refuses_tiles_out_of_row_order():
    grid = TileGrid((150, 170), tile_size=64, overlap=24, multiple=8)
    blender = Blender(grid, channels=1)
    tiles = list(grid)
    blender.add(tiles[-1], np.zeros((1, tiles[-1].size_y, tiles[-1].size_x), np.float32))
    with pytest.raises(ValueError, match="row by row"):
        blender.add(tiles[0], np.zeros((1, tiles[0].size_y, tiles[0].size_x), np.float32))
