"""The classic baseline every model here is measured against: Otsu threshold + distance watershed.

No learning: smooth, threshold at Otsu's level, fill holes, and split touching nuclei with a
watershed on the distance transform, seeded at its peaks (at least about a radius apart, from the
median size of the thresholded blobs). The image is first read as the "auto" models read it
(modality.py), so fluorescence, brightfield and H&E get the same chance.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .inputs import as_channels_first
from .modality import to_grey
from .postprocess import remove_small


def otsu_watershed(image: np.ndarray, channel_axis: int | None = None, min_size: int = 15) -> np.ndarray:
    """Instance labels (int32) of a 2D image by Otsu thresholding and a distance-transform watershed."""
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    grey, _modality = to_grey(as_channels_first(image, None, channel_axis), "auto")
    smooth = ndi.gaussian_filter(grey[0], 1.0)
    if float(smooth.max()) <= float(smooth.min()):
        return np.zeros(smooth.shape, dtype=np.int32)
    mask = ndi.binary_fill_holes(smooth > threshold_otsu(smooth))
    blobs, count = ndi.label(mask)
    blobs = remove_small(blobs, min_size)
    if not blobs.any():
        return np.zeros(smooth.shape, dtype=np.int32)
    areas = np.bincount(blobs.ravel())[1:]
    radius = float(np.median(np.sqrt(areas[areas > 0] / np.pi)))
    distance = ndi.distance_transform_edt(blobs > 0)
    peaks = peak_local_max(ndi.gaussian_filter(distance, 1.0), min_distance=max(3, int(0.6 * radius)),
                           labels=blobs, exclude_border=False)
    markers = np.zeros(blobs.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-distance, markers, mask=blobs > 0)
    unseeded, _ = ndi.label((blobs > 0) & (labels == 0))
    labels = np.where(unseeded > 0, unseeded + labels.max(), labels)
    return remove_small(labels.astype(np.int32), min_size)
