import numpy as np
import pytest

import napari_attnseg as nas
from napari_attnseg.config import InferConfig
from napari_attnseg.inference.predict import predict_steps


@pytest.fixture(scope="module")
def default_model():
    return nas.load_model()


def test_default_model_segments_synthetic_nuclei(default_model):
    image, truth = nas.synthetic_nuclei((256, 256), seed=90210, radius_range=(8.0, 12.0))
    labels = nas.segment(image, default_model)
    assert labels.dtype == np.int32 and labels.shape == image.shape
    scores = nas.evaluate(labels, truth)
    assert scores["ap50"] > 0.6, scores


def test_progress_counts_every_tile(default_model):
    image, _ = nas.synthetic_nuclei((300, 200), seed=1)
    # the object size given as the model's own: no probe, no rescaling, so 300x200 is 6 tiles of 128
    config = InferConfig(tile_size=128, overlap=16, batch_size=2, diameter=default_model.config.diameter)
    steps = predict_steps(image, default_model, config)
    reports = []
    while True:
        try:
            reports.append(next(steps))
        except StopIteration as stop:
            prediction = stop.value
            break
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    assert reports[-1].done == reports[-1].total == 6
    assert prediction.probabilities.shape == (3, 300, 200)
    assert prediction.device == "cpu"


def test_stack_is_segmented_per_plane_and_stitched(default_model):
    image, _ = nas.synthetic_nuclei((128, 128), seed=5, radius_range=(8.0, 10.0))
    stack = np.stack([image, image, image])
    labels = nas.segment(stack, default_model)
    assert labels.shape == stack.shape
    # The same plane three times: every object runs through all planes with one id.
    np.testing.assert_array_equal(labels[0], labels[2])
    assert labels.max() == labels[0].max()


def test_rgb_and_channel_axis(default_model):
    image, _ = nas.synthetic_nuclei((96, 96), seed=2, radius_range=(8.0, 10.0))
    grey = nas.segment(image, default_model)
    as_rgb = np.stack([image] * 3, axis=-1)
    np.testing.assert_array_equal(nas.segment(as_rgb, default_model), grey)
    channels_first = np.stack([image] * 3, axis=0)
    np.testing.assert_array_equal(nas.segment(channels_first, default_model, channel_axis=0), grey)


def test_attention_maps_on_request(default_model):
    image, _ = nas.synthetic_nuclei((96, 96), seed=2)
    prediction = nas.predict(image, default_model, return_attention=True)
    assert prediction.attention.shape == (default_model.config.depth - 1, 96, 96)
    assert 0.0 <= prediction.attention.min() and prediction.attention.max() <= 1.0


def test_reduced_precision_path_agrees_with_fp32(default_model):
    # bf16 autocast on the CPU exercises the same autocast code path a GPU's fp16 AMP takes.
    image, _ = nas.synthetic_nuclei((160, 160), seed=4, radius_range=(8.0, 12.0))
    exact = nas.segment(image, default_model, InferConfig(precision="fp32"))
    reduced = nas.segment(image, default_model, InferConfig(precision="bf16"))
    assert nas.evaluate(reduced, exact)["ap50"] > 0.9
