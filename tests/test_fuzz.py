"""Fuzzing: any array shape, dtype and values either segments / trains or raises a documented error."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import napari_attnseg as nas
from napari_attnseg.config import InferConfig
from napari_attnseg.errors import InputError
from napari_attnseg.inference.inputs import check_labels
from napari_attnseg.train.targets import instance_targets
from napari_attnseg.train.trainset import build_samples

from .conftest import TINY

MODEL = nas.new_model(TINY, seed=0)
# ATTNSEG_FUZZ_EXAMPLES=1000 for a deeper search than the suite's quick 40 examples per test
FUZZ = settings(max_examples=int(os.environ.get("ATTNSEG_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([np.bool_, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.int64,
                          np.uint64, np.float16, np.float32, np.float64, np.complex64])


def _arrays(min_dims: int, max_dims: int, min_side: int, max_side: int):
    return DTYPES.flatmap(lambda dtype: hnp.arrays(
        dtype, hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)))


# anything at all, and (half the time) images of a plausible shape, so that both outcomes are explored
IMAGES = _arrays(1, 4, 0, 20) | _arrays(2, 3, 4, 32)


@FUZZ
@given(image=IMAGES, channel_axis=st.none() | st.integers(-5, 4))
def test_segment_any_array(image, channel_axis):
    try:
        labels = nas.segment(image, MODEL, InferConfig(device="cpu", tile_size=32, overlap=8),
                             channel_axis=channel_axis)
    except InputError as error:
        assert str(error) and "\n" not in str(error)
        event("refused")
        return
    event("segmented")
    assert labels.dtype == np.int32 and labels.ndim in (2, 3)
    assert labels.min() >= 0
    spatial = list(image.shape)
    if channel_axis is not None:
        del spatial[channel_axis]
    elif image.ndim == 3 and image.shape[-1] in (3, 4) and image.shape[0] > 4:
        del spatial[-1]  # a trailing RGB(A) axis is recognised by itself
    assert labels.shape == tuple(spatial)


LABEL_DTYPES = st.sampled_from([np.bool_, np.uint8, np.int8, np.uint16, np.int32, np.int64, np.uint64,
                                np.float32, np.float64])


@st.composite
def _label_cases(draw):
    shape = draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40))
    labels = draw(hnp.arrays(draw(LABEL_DTYPES), draw(st.sampled_from([shape, shape, (shape[0], shape[1] + 1)]))))
    mask = draw(st.none() | hnp.arrays(np.bool_, shape))
    return shape, labels, mask


@FUZZ
@given(case=_label_cases())
def test_training_targets_from_any_labels(case):
    shape, labels, mask = case
    try:
        checked = check_labels(labels, shape)
    except InputError as error:
        assert str(error) and "\n" not in str(error)
        event("refused")
        return
    event("accepted")
    targets = instance_targets(checked)
    assert targets.shape == shape and set(np.unique(targets)) <= {0, 1, 2}
    assert np.array_equal(targets > 0, checked > 0)


@FUZZ
@given(case=_label_cases())
def test_training_samples_from_any_labels_and_masks(case):
    shape, labels, mask = case
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    try:
        samples = build_samples(MODEL, [image], [labels], [mask], None)
    except InputError as error:
        assert str(error) and "\n" not in str(error)
        event("refused")
        return
    event("accepted")
    assert len(samples) == 1 and samples[0].targets.shape == shape
    assert samples[0].weights.sum() == (shape[0] * shape[1] if mask is None else mask.sum())
