import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential, watershed

from napari_attnseg.inference.postprocess import (
    _drop_small_and_renumber,
    flood_from_seeds,
    instances_from_probabilities,
    pair_iou,
    remove_small,
    stitch_planes,
)
from napari_attnseg.train.targets import instance_targets


def _disk(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2


def _probabilities_from_labels(labels):
    targets = instance_targets(labels)
    return np.stack([(targets == k).astype(np.float32) for k in range(3)])


def test_touching_objects_are_split_along_the_boundary():
    labels = np.zeros((60, 90), dtype=np.int32)
    labels[_disk(labels.shape, (30, 30), 16)] = 1
    labels[_disk(labels.shape, (30, 58), 16) & (labels == 0)] = 2
    result = instances_from_probabilities(_probabilities_from_labels(labels), min_size=10)
    assert result.max() == 2
    assert result.dtype == np.int32
    result_ids, true_ids, iou = pair_iou(result, labels)
    best_per_truth = {t: max(i for i, tt in zip(iou, true_ids) if tt == t) for t in (1, 2)}
    assert min(best_per_truth.values()) > 0.75


def test_small_objects_are_removed_and_ids_are_sequential():
    labels = np.zeros((50, 50), dtype=np.int32)
    labels[_disk(labels.shape, (15, 15), 8)] = 5
    labels[40:42, 40:42] = 9
    result = instances_from_probabilities(_probabilities_from_labels(labels), min_size=20)
    assert set(np.unique(result)) == {0, 1}


def test_foreground_without_seed_still_becomes_an_object():
    probabilities = np.zeros((3, 40, 40), dtype=np.float32)
    probabilities[0] = 1.0
    probabilities[:, 10:20, 10:20] = [[[0.1]], [[0.3]], [[0.6]]]  # foreground, but no confident interior
    result = instances_from_probabilities(probabilities, min_size=5)
    assert result.max() == 1 and (result > 0).sum() == 100


def test_stitch_joins_overlapping_planes_and_keeps_others_apart():
    planes = np.zeros((3, 40, 40), dtype=np.int32)
    planes[0][_disk((40, 40), (10, 10), 6)] = 1
    planes[1][_disk((40, 40), (11, 10), 6)] = 7
    planes[1][_disk((40, 40), (30, 30), 5)] = 3
    planes[2][_disk((40, 40), (30, 31), 5)] = 1
    stitched = stitch_planes(planes, stitch_threshold=0.25)
    assert stitched[0][10, 10] == stitched[1][11, 10]
    assert stitched[1][30, 30] == stitched[2][30, 31]
    assert stitched[1][11, 10] != stitched[1][30, 30]
    assert len(np.unique(stitched)) == 3


@pytest.mark.parametrize("seed", range(6))
def test_flood_from_seeds_gives_exactly_the_whole_image_watershed(seed):
    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.random((120, 160)), 3.0)
    mask = field > np.quantile(field, 0.45)  # many pieces, some touching the image border
    # seeds are connected and inside the mask, as the pipeline makes them; some pieces get none,
    # some one, some several
    seeds, _ = ndi.label((ndi.gaussian_filter(rng.random((120, 160)), 2.0) > 0.55) & mask)
    elevation = rng.random((120, 160)).astype(np.float32)
    expected = watershed(elevation, markers=seeds, mask=mask)
    assert np.array_equal(flood_from_seeds(elevation, seeds, mask), expected)


def test_flood_from_seeds_without_seeds_or_mask_is_empty():
    elevation = np.zeros((20, 20), np.float32)
    assert flood_from_seeds(elevation, np.zeros((20, 20), np.int32), np.ones((20, 20), bool)).max() == 0
    assert flood_from_seeds(elevation, np.ones((20, 20), np.int32), np.zeros((20, 20), bool)).max() == 0


@pytest.mark.parametrize("min_size", [0, 1, 5, 40])
def test_dropping_small_objects_and_renumbering_is_skimages_relabel_of_remove_small(min_size):
    rng = np.random.default_rng(min_size)
    labels = rng.choice([0, 3, 4, 9, 10, 200], size=(60, 70), p=[0.5, 0.3, 0.1, 0.05, 0.04, 0.01]).astype(np.int32)
    labels[:2, :2] = 77  # a 4-pixel object
    expected = relabel_sequential(remove_small(labels, min_size))[0]
    got = _drop_small_and_renumber(labels, min_size)
    assert got.dtype == np.int32 and np.array_equal(got, expected)
    assert np.array_equal(np.unique(got), np.arange(got.max() + 1))  # sequential, no gaps
    assert not np.shares_memory(got, labels)
