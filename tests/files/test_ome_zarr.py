"""OME-Zarr images in, OME-Zarr labels out: metadata written by hand here, no ome-zarr library."""

import json

import numpy as np
import pytest

import napari_attnseg as nas
from napari_attnseg.errors import InputError

zarr = pytest.importorskip("zarr", reason="OME-Zarr needs zarr")
pytest.importorskip("dask.array", reason="chunked segmentation needs dask")
from napari_attnseg.files.ome_zarr import is_ome_zarr, open_ome_image  # noqa: E402
from napari_attnseg.inference.chunked import segment_dask, segment_zarr  # noqa: E402

ROLES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
SCALE = {"t": 1.0, "c": 1.0, "z": 2.0, "y": 0.325, "x": 0.325}


def write_ome(path, data, axes: str, version: str = "0.4", levels: int = 2, types: dict | None = None):
    """A minimal OME-Zarr image as NGFF ``version`` describes it, written with plain zarr calls."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2 if version == "0.4" else 3)
    datasets = []
    for level in range(levels):
        step = 2 ** level
        level_data = data[(Ellipsis, slice(None, None, step), slice(None, None, step))]
        array = group.create_array(str(level), shape=level_data.shape, dtype=level_data.dtype,
                                   chunks=(1,) * (data.ndim - 2) + (128, 128))
        array[...] = level_data
        scale = [SCALE.get(name, 1.0) * (step if name in "yx" else 1) for name in axes]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    types = types or ROLES
    multiscale = {"name": "cells", "axes": [{"name": name, "type": types[name]} for name in axes],
                  "datasets": datasets}
    if version == "0.4":
        group.attrs["multiscales"] = [{**multiscale, "version": "0.4"}]
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [multiscale]}
    return str(path)


@pytest.fixture(scope="module")
def model():
    return nas.load_model()


@pytest.fixture(scope="module")
def image():
    image, _ = nas.synthetic_nuclei((300, 420), seed=3, radius_range=(7.0, 10.0))
    return image


@pytest.fixture(scope="module")
def plain_labels(model, image):
    return segment_dask(image, model, chunk=256, halo=48).compute(scheduler="threads")


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_labels_image_matches_plain_path_and_carries_metadata(version, model, image, plain_labels, tmp_path):
    source = write_ome(tmp_path / "cells.ome.zarr", image[np.newaxis, np.newaxis, np.newaxis], "tczyx", version)
    written = segment_zarr(source, None, model, chunk=256, halo=48, levels=3)

    assert written == f"{source}/labels/attnseg"
    labels_image = open_ome_image(written)
    assert labels_image.version == version and labels_image.names == ("t", "c", "z", "y", "x")
    full = zarr.open_array(f"{written}/0", mode="r")
    assert full.shape == (1, 1, 1, *image.shape) and full.dtype == np.int32
    np.testing.assert_array_equal(full[0, 0, 0], plain_labels)
    # Level k is every 2**k-th pixel, and its pixel size is 2**k times the image's.
    assert len(labels_image.level_paths) == 3
    np.testing.assert_array_equal(zarr.open_array(f"{written}/2", mode="r")[0, 0, 0], plain_labels[::4, ::4])
    assert labels_image.scale(0) == [1.0, 1.0, 2.0, 0.325, 0.325]
    assert labels_image.scale(2) == [1.0, 1.0, 2.0, 1.3, 1.3]

    # Where each version keeps its metadata on disk: .zattrs (0.4) or zarr.json's "ome" (0.5).
    if version == "0.4":
        listing = json.loads((tmp_path / "cells.ome.zarr" / "labels" / ".zattrs").read_text())
        label_attrs = json.loads((tmp_path / "cells.ome.zarr" / "labels" / "attnseg" / ".zattrs").read_text())
    else:
        listing = json.loads((tmp_path / "cells.ome.zarr" / "labels" / "zarr.json").read_text())["attributes"]["ome"]
        label_attrs = json.loads(
            (tmp_path / "cells.ome.zarr" / "labels" / "attnseg" / "zarr.json").read_text())["attributes"]["ome"]
    assert listing["labels"] == ["attnseg"]
    assert label_attrs["image-label"]["source"] == {"image": "../../"}
    assert label_attrs["multiscales"][0]["axes"][-1] == {"name": "x", "type": "space"}


def test_channel_axis_becomes_the_models_channels(model, image, plain_labels, tmp_path):
    # Three identical channels: the model (one input channel) reads their mean, the image itself.
    source = write_ome(tmp_path / "rgb.zarr", np.stack([image] * 3)[:, np.newaxis], "czyx", levels=1)
    written = segment_zarr(source, str(tmp_path / "out.zarr"), model, chunk=256, halo=48)
    labels = zarr.open_array(f"{written}/0", mode="r")
    assert labels.shape == (1, 1, *image.shape)  # the channel axis has one entry in a labels image
    np.testing.assert_array_equal(labels[0, 0], plain_labels)
    assert not (tmp_path / "rgb.zarr" / "labels").exists()  # a separate output leaves the image alone
    two_channel_model = nas.new_model(nas.ModelConfig(base_width=8, depth=3, in_channels=2))
    with pytest.raises(InputError, match="reads 2 channel"):
        segment_zarr(source, str(tmp_path / "out2.zarr"), two_channel_model, chunk=256, halo=48)


def test_bad_ome_zarr_is_explained(model, tmp_path):
    group = zarr.open_group(str(tmp_path / "bare.zarr"), mode="w")
    group.create_array("0", shape=(64, 64), dtype=np.uint16)
    assert not is_ome_zarr(tmp_path / "bare.zarr")
    with pytest.raises(InputError, match="without OME-Zarr 'multiscales'"):
        segment_zarr(str(tmp_path / "bare.zarr"), str(tmp_path / "o.zarr"), model)

    data = np.zeros((2, 64, 64), np.uint16)
    with pytest.raises(InputError, match="2 planes along axis 't'"):
        open_ome_image(write_ome(tmp_path / "movie.zarr", data, "tyx", levels=1)).plane()
    with pytest.raises(InputError, match="axis 'a' of type 'angle'"):
        open_ome_image(write_ome(tmp_path / "odd.zarr", data, "ayx", levels=1, types={**ROLES, "a": "angle"}))
    with pytest.raises(InputError, match="'y', 'x'"):
        open_ome_image(write_ome(tmp_path / "xy.zarr", data, "cxy", levels=1))


def test_existing_labels_are_never_overwritten(model, image, tmp_path, capsys):
    from napari_attnseg.cli import main

    source = write_ome(tmp_path / "cells.zarr", image, "yx", version="0.5", levels=1)
    args = ["segment-zarr", source, "--chunk", "256", "--halo", "48", "--name", "nuclei", "--levels", "1"]
    assert main(args) == 0
    assert f"{source}/labels/nuclei" in capsys.readouterr().out
    before = zarr.open_array(f"{source}/labels/nuclei/0", mode="r")[...]
    assert main(args) == 2 and "exists" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_array(f"{source}/labels/nuclei/0", mode="r")[...], before)
    assert open_ome_image(f"{source}/labels/nuclei").scale(0) == [0.325, 0.325]
