"""The afternoon in widgets: load → segment → edit → check → fine-tune → re-segment, on a tiny model."""

import numpy as np

from napari_attnseg._qt import CorrectWidget, FinetuneWidget, SegmentWidget
from napari_attnseg._qt._session import session_for

from .helpers import painted, segment_layer, wait_idle


def test_segment_edit_finetune_resegment(viewer, qtbot, errors):
    from ..helpers import real_pair

    # a real H&E image: the bundled model has room to improve there (on synthetic nuclei it already
    # scores AP50 1.0, and a fine-tune that beats nothing is rightly not adopted)
    image, truth, _axis = real_pair("00ae65c1c6631ae6")
    viewer.add_image(image, name="cells", rgb=True)
    segment = SegmentWidget(viewer)
    correct = CorrectWidget(viewer)
    finetune = FinetuneWidget(viewer)
    for widget in (segment, correct, finetune):
        qtbot.addWidget(widget)

    segment.image_combo.value = "cells"
    segment.start()
    assert segment.worker is not None and not segment.segment_button.isEnabled()
    wait_idle(qtbot, segment)
    labels_layer = viewer.layers["cells_labels"]
    assert labels_layer.data.shape == image.shape[:2] and labels_layer.data.dtype.kind in "iu"
    np.testing.assert_array_equal(labels_layer.data, segment.session.predictions["cells"].labels)
    assert "cells_uncertainty" not in viewer.layers  # optional layers are off by default
    assert segment.segment_button.isEnabled()

    # The biologist fixes the labels (here: the truth) and marks the whole image as reviewed.
    correct.labels_combo.value = "cells_labels"
    labels_layer.data = truth.astype(np.int32)
    correct.check_all()
    assert np.all(viewer.layers["cells_checked"].data > 0)
    correct.update_counts()
    assert f"objects: {len(np.unique(truth)) - 1}" in correct.counts.text()

    finetune.image_combo.value = "cells"
    finetune.labels_combo.value = "cells_labels"
    finetune.checked_combo.value = "cells_checked"
    finetune.seconds.value = 600  # an epoch budget: the same result however busy the machine is
    finetune.epochs.value = 10
    finetune.start()
    wait_idle(qtbot, finetune, timeout=120_000)
    session = session_for(viewer)
    assert session.tuned_model is not None and session.current_model is session.tuned_model
    assert len(finetune.plot.loss) >= 4 and finetune.plot.score
    assert "validation AP50" in finetune.result.text()
    assert [image["name"] for image in session.tuned_model.card["record"]["images"]] == ["cells"]
    qtbot.waitUntil(lambda: "cells_tuned_labels" in viewer.layers, timeout=60_000)
    # The corrections are untouched by re-segmentation.
    np.testing.assert_array_equal(viewer.layers["cells_labels"].data, truth)
    assert errors == []


def test_resegment_asks_before_replacing_edits(viewer, qtbot, nuclei_image, monkeypatch):
    from napari_attnseg._qt import _common

    segment = segment_layer(viewer, qtbot, nuclei_image[0])
    edited = painted(np.asarray(viewer.layers["cells_labels"].data))
    viewer.layers["cells_labels"].data = edited
    questions = []
    monkeypatch.setattr(_common, "confirm", lambda parent, question: questions.append(question) or False)
    segment.start()
    assert segment.worker is None and len(questions) == 1
    np.testing.assert_array_equal(viewer.layers["cells_labels"].data, edited)


def test_suggest_moves_the_view_to_an_unchecked_uncertain_region(viewer, qtbot, nuclei_image):
    segment = segment_layer(viewer, qtbot, nuclei_image[0])
    checked = np.zeros(nuclei_image[0].shape, dtype=np.uint8)
    checked[:, :100] = 1
    viewer.add_labels(checked, name="cells_checked")
    segment.suggest()
    assert viewer.camera.center[-1] >= 100 - 1e-6
    assert "uncertain" in segment.status.text()


def test_optional_layers(viewer, qtbot, nuclei_image):
    segment_layer(viewer, qtbot, nuclei_image[0], show_probability=True, show_attention=True,
                  show_uncertainty=True)
    assert "cells_probability" in viewer.layers and "cells_uncertainty" in viewer.layers
    attention = [layer.name for layer in viewer.layers if layer.name.startswith("cells_attention_")]
    assert len(attention) == 2 and not viewer.layers[attention[0]].visible


def test_a_dask_backed_layer_is_segmented_chunk_by_chunk(viewer, qtbot):
    import os

    import dask.array as da

    import napari_attnseg as nas

    image, truth = nas.synthetic_nuclei((300, 260), seed=12, radius_range=(8.0, 11.0))
    session_for(viewer)._default_model = nas.load_model()
    viewer.add_image(da.from_array(image, chunks=(150, 130)), name="big")
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = "big"
    segment.start()
    wait_idle(qtbot, segment)
    layer = viewer.layers["big_labels"]
    assert not isinstance(layer.data, np.ndarray)  # a zarr array on disk, never loaded whole
    assert "chunk by chunk" in segment.status.text()
    labels = np.asarray(layer.data).astype(np.int32)
    assert nas.evaluate(labels, truth)["ap50"] > 0.6
    folder = segment._scratch[layer.unique_id]
    viewer.layers.remove(layer)  # closing the layer discards it, and its folder on disk
    assert not os.path.exists(folder)


def test_a_fine_tune_that_beat_nothing_leaves_the_model_in_use(viewer, qtbot, nuclei_image):
    from .helpers import finetune_widget_for

    image, truth = nuclei_image
    finetune = finetune_widget_for(viewer, qtbot, image, truth, np.ones(truth.shape, np.uint8))
    session = session_for(viewer)
    in_use = session.model
    same = in_use.copy()  # what train_steps returns when no epoch beat the starting weights
    scores = {"ap50": 0.7, "dice": 0.9}
    same.card["validation"] = {"before": scores, "after": dict(scores)}
    finetune._adopt(same)
    assert session.model is in_use and session.tuned_model is None
    assert "did not beat the model in use" in finetune.status.text()
    assert "cells_tuned_labels" not in viewer.layers
