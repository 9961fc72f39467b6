import numpy as np
import pytest

from napari_attnseg.errors import InputError
from napari_attnseg.inference.postprocess import remove_small
from napari_attnseg.project import editing


def _two_touching_disks():
    yy, xx = np.mgrid[:60, :90]
    labels = np.zeros((60, 90), dtype=np.int32)
    labels[(yy - 30) ** 2 + (xx - 30) ** 2 < 16**2] = 1
    labels[((yy - 30) ** 2 + (xx - 58) ** 2 < 16**2) & (labels == 0)] = 1  # one merged object
    return labels


def test_watershed_splits_a_merged_pair_of_nuclei():
    labels = _two_touching_disks()
    split = editing.split_by_watershed(labels, 1, min_distance=8)
    assert editing.object_count(split) == 2
    assert np.array_equal(split > 0, labels > 0)
    assert split[30, 20] != split[30, 70]


def test_line_splits_an_object_in_two():
    labels = _two_touching_disks()
    split = editing.split_by_line(labels, 1, np.array([[0, 44], [59, 44]]))
    assert editing.object_count(split) == 2
    assert np.array_equal(split > 0, labels > 0)


def test_line_that_misses_is_an_input_error():
    with pytest.raises(InputError, match="does not cut"):
        editing.split_by_line(_two_touching_disks(), 1, np.array([[0, 0], [5, 5]]))


def test_merge_and_delete():
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[2:10, 2:9] = 1
    labels[2:10, 10:18] = 2
    merged = editing.merge_objects(labels, 1, 2)
    assert set(np.unique(merged)) == {0, 1}
    assert merged[5, 9] == 1  # the gap between them is closed
    assert set(np.unique(editing.delete_object(labels, 2))) == {0, 1}
    with pytest.raises(InputError, match="no object 7"):
        editing.delete_object(labels, 7)
    with pytest.raises(InputError, match="background"):
        editing.merge_objects(labels, 0, 2)


def test_fill_holes_remove_small_relabel():
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[2:12, 2:12] = 5
    labels[6:8, 6:8] = 0
    labels[15, 15] = 9
    assert editing.fill_holes(labels)[7, 7] == 5
    assert remove_small(labels, 2)[15, 15] == 0
    assert set(np.unique(editing.relabel(labels))) == {0, 1, 2}
    assert editing.next_free_label(labels) == 10


def test_changed_pixels_rebuild_the_edit():
    before = np.zeros((5, 5), dtype=np.int32)
    after = before.copy()
    after[1, 2] = 3
    indices, values = editing.changed_pixels(before, after)
    rebuilt = before.copy()
    rebuilt[indices] = values
    np.testing.assert_array_equal(rebuilt, after)


def test_delete_inside_removes_objects_mostly_in_the_region():
    labels = np.zeros((40, 40), np.int32)
    labels[2:8, 2:8], labels[2:8, 20:26], labels[30:36, 30:36] = 1, 2, 3
    region = np.zeros_like(labels, bool)
    region[:12, :23] = True  # all of 1, half of 2 (3 columns of 6), none of 3
    result = editing.delete_inside(labels, region)
    assert set(np.unique(result)) == {0, 3}
    with pytest.raises(InputError, match="no object"):
        editing.delete_inside(result, np.zeros_like(region))


def test_merge_edits_puts_edits_on_the_newer_labels_with_fresh_ids():
    base = np.zeros((20, 20), np.int32)
    edited = base.copy()
    edited[2:5, 2:5] = 1  # painted on an empty layer: its id 1 ...
    newer = np.zeros_like(base)
    newer[10:15, 10:15] = 1  # ... is taken in the file someone saved meanwhile
    merged = editing.merge_edits(base, edited, newer)
    assert merged[12, 12] == 1 and merged[3, 3] == 2
    np.testing.assert_array_equal(editing.merge_edits(base, base, newer), newer)
