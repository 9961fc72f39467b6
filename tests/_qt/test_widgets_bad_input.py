"""Issue 5, GUI side: layers the model cannot take give one notification; napari stays usable, nothing is lost.

Each case: exactly one error notification naming the problem, no worker left running, the controls
back, no layer added or changed, the model in use unchanged, and a good image segments afterwards.
"""

import numpy as np
import pytest
import tifffile

from napari_attnseg._qt import FinetuneWidget, ImagesWidget, SegmentWidget
from napari_attnseg._qt._session import session_for
from napari_attnseg.config import ModelConfig
from napari_attnseg.files.modelfile import new_model
from napari_attnseg.project.folder import PROJECT_DIR, Project

from .helpers import painted, wait_idle

GREY = np.random.default_rng(0).random((48, 48)).astype(np.float32)

# name: (layer data, add_image options, model input channels, words the notification must hold)
SEGMENT_CASES = {
    "grey image, 2-channel model": (GREY, {}, 2, "reads 2 channel"),
    "RGB image, 2-channel model": (np.stack([GREY] * 3, axis=-1), {"rgb": True}, 2, "reads 2 channel"),
    "4D": (np.zeros((2, 3, 32, 32), np.float32), {}, 1, "neither"),
    "5D": (np.zeros((2, 2, 3, 32, 32), np.float32), {}, 1, "neither"),
    "zero-size stack": (np.zeros((0, 32, 32), np.float32), {"contrast_limits": (0, 1)}, 1, "empty"),
    "one row": (np.zeros((1, 64), np.float32), {}, 1, "too small"),
    "all NaN": (np.full((32, 32), np.nan, np.float32), {"contrast_limits": (0, 1)}, 1, "NaN"),
    "some infinite": (np.where(GREY > 0.5, np.inf, GREY).astype(np.float32), {"contrast_limits": (0, 1)},
                      1, "infinite"),
    "bool": (GREY > 0.5, {}, 1, "must hold numbers"),
}


@pytest.fixture
def kept(viewer):
    """A good image with edited labels that no failure may touch."""
    viewer.add_image(GREY, name="good")
    edited = painted(np.zeros((48, 48), dtype=np.int32))
    viewer.add_labels(edited.copy(), name="good_labels")
    return edited


def assert_untouched(viewer, kept, names_before) -> None:
    assert [layer.name for layer in viewer.layers] == names_before
    np.testing.assert_array_equal(viewer.layers["good_labels"].data, kept)


@pytest.mark.parametrize("case", SEGMENT_CASES)
def test_segmenting_a_layer_the_model_cannot_take(viewer, qtbot, errors, kept, case):
    data, options, channels, words = SEGMENT_CASES[case]
    session = session_for(viewer)
    if channels != 1:
        session._default_model = new_model(ModelConfig(base_width=8, depth=3, in_channels=channels),
                                           name="two-channel", seed=0)
    model = session.model
    viewer.add_image(data, name="bad", **options)
    names_before = [layer.name for layer in viewer.layers]
    segment = SegmentWidget(viewer)
    qtbot.addWidget(segment)
    segment.image_combo.value = "bad"
    segment.start()
    wait_idle(qtbot, segment)

    assert len(errors) == 1, errors
    assert words in errors[0] and "bad" in errors[0]
    assert "Traceback" not in errors[0]
    assert segment.segment_button.isEnabled() and not segment.cancel_button.isEnabled()
    assert_untouched(viewer, kept, names_before)
    assert session.model is model

    if channels == 1:  # napari and the widget still work: a good image segments
        viewer.layers.remove("good_labels")
        segment.image_combo.value = "good"
        segment.start()
        wait_idle(qtbot, segment)
        assert viewer.layers["good_labels"].data.shape == (48, 48) and len(errors) == 1


# name: (labels, checked, image) overriding the good ones, words the notification must hold
FINETUNE_CASES = {
    "labels of another shape": (np.zeros((40, 48), np.int32), None, None, "'cells_labels' is (40, 48)"),
    "labels transposed": (np.zeros((48, 40), np.int32), None, np.zeros((40, 48), np.float32),
                          "'cells_labels' is (48, 40)"),
    "checked of another shape": (None, np.ones((48, 40), np.uint8), None, "'cells_checked' is (48, 40)"),
    "negative ids": (-painted(np.zeros((48, 48), np.int32)), None, None, "negative"),
    "image all NaN": (None, None, np.full((48, 48), np.nan, np.float32), "NaN"),
    "stack image, 2D labels": (None, None, np.zeros((3, 48, 48), np.float32), "is (3, 48, 48)"),
}


@pytest.mark.parametrize("case", FINETUNE_CASES)
def test_fine_tuning_with_labels_or_images_that_do_not_fit(viewer, qtbot, errors, case):
    labels, checked, image, words = FINETUNE_CASES[case]
    labels = painted(np.zeros((48, 48), np.int32)) if labels is None else labels
    checked = np.ones((48, 48), np.uint8) if checked is None else checked
    image = GREY if image is None else image
    viewer.add_image(image, name="cells", contrast_limits=(0, 1))
    viewer.add_labels(labels.copy(), name="cells_labels")
    viewer.add_labels(checked.copy(), name="cells_checked")
    names_before = [layer.name for layer in viewer.layers]
    session = session_for(viewer)
    model = session.model
    finetune = FinetuneWidget(viewer)
    qtbot.addWidget(finetune)
    finetune.image_combo.value, finetune.labels_combo.value = "cells", "cells_labels"
    finetune.checked_combo.value = "cells_checked"
    finetune.seconds.value = 10
    finetune.start()
    wait_idle(qtbot, finetune)

    assert len(errors) == 1, errors
    assert words in errors[0] and "Traceback" not in errors[0]
    assert finetune.start_button.isEnabled() and not finetune.stop_button.isEnabled()
    assert [layer.name for layer in viewer.layers] == names_before
    np.testing.assert_array_equal(viewer.layers["cells_labels"].data, labels)
    np.testing.assert_array_equal(viewer.layers["cells_checked"].data, checked)
    assert session.model is model and session.tuned_model is None


def test_segment_all_with_unusable_images_reports_them_once_and_does_the_rest(viewer, qtbot, project_folder,
                                                                             errors):
    tifffile.imwrite(project_folder / "cells_3_nan.tif", np.full((64, 64), np.nan, np.float32))
    (project_folder / "cells_4_broken.tif").write_bytes(b"II*\x00 not really a tiff")
    images = ImagesWidget(viewer)
    segment = SegmentWidget(viewer)
    for widget in (images, segment):
        qtbot.addWidget(widget)
    images.open_folder(project_folder)
    edited = painted(np.asarray(viewer.layers["cells_0_labels"].data))
    viewer.layers["cells_0_labels"].data = edited
    segment.start_all()
    wait_idle(qtbot, segment)
    assert len(errors) == 1 and "cells_3_nan.tif" in errors[0] and "cells_4_broken.tif" in errors[0]
    statuses = [entry.status for entry in Project.open(project_folder).entries]
    assert statuses == ["corrected", "segmented", "segmented", "new", "new"]
    saved = tifffile.imread(project_folder / PROJECT_DIR / "labels" / "cells_0_labels.tif")
    np.testing.assert_array_equal(saved, edited)

    # Browsing to the broken file says why once and keeps the image on screen.
    images.image_list.setCurrentRow(4)
    assert len(errors) == 2 and "cells_4_broken" in errors[1]
    assert "cells_0_labels" in viewer.layers and images.image_list.currentRow() == 0
    np.testing.assert_array_equal(viewer.layers["cells_0_labels"].data, edited)
