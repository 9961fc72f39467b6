"""Training targets from instance labels."""

import numpy as np

from napari_attnseg.train.targets import instance_targets


def test_targets_mark_interior_boundary_and_background():
    labels = np.zeros((12, 12), dtype=np.int32)
    labels[2:10, 1:6] = 1
    labels[2:10, 6:11] = 2
    targets = instance_targets(labels)
    assert targets[0, 0] == 0
    assert targets[2, 3] == 2  # outer edge
    assert targets[5, 2] == 1  # interior
    assert (targets[3:9, 4:8] == 2).all()  # widened line where the two touch
