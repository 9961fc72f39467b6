"""The reader opens zarr and OME-Zarr images lazily: dask arrays, a pyramid as its list of levels."""

from pathlib import Path

import numpy as np
import pytest

from napari_attnseg import _reader

zarr = pytest.importorskip("zarr", reason="zarr images need zarr")
da = pytest.importorskip("dask.array", reason="zarr images open as dask arrays")
from napari_attnseg.files.ome_zarr import open_ome_image, write_labels_image  # noqa: E402

from .files.test_ome_zarr import write_ome  # noqa: E402


@pytest.fixture
def ome_with_labels(tmp_path):
    data = np.arange(2 * 256 * 320, dtype=np.uint16).reshape(2, 1, 256, 320)
    path = write_ome(tmp_path / "cells.ome.zarr", data, "czyx", version="0.4", levels=2)
    labels = da.from_array((np.arange(256 * 320).reshape(256, 320) // 1000).astype(np.int32), chunks=128)
    write_labels_image(labels, open_ome_image(path), name="nuclei", levels=2)
    return path, data, labels.compute()


def test_ome_zarr_opens_as_lazy_pyramids_with_pixel_size(ome_with_labels):
    path, data, labels = ome_with_labels
    reader = _reader.get_reader(path)
    assert reader is not None
    (image, image_meta, image_type), (label_data, label_meta, label_type) = reader(path)
    assert image_type == "image" and label_type == "labels"
    # Two levels, the singleton z dropped, channels kept for napari to split into layers.
    assert [level.shape for level in image] == [(2, 256, 320), (2, 128, 160)]
    assert all(isinstance(level, da.Array) for level in image + label_data)
    assert image_meta["multiscale"] and image_meta["channel_axis"] == 0
    assert image_meta["scale"] == [0.325, 0.325] and image_meta["name"] == ["cells_c0", "cells_c1"]
    np.testing.assert_array_equal(image[1].compute(), data[:, 0, ::2, ::2])
    assert [level.shape for level in label_data] == [(256, 320), (128, 160)]
    np.testing.assert_array_equal(label_data[0].compute(), labels)
    assert label_meta["name"] == "cells_nuclei" and label_meta["scale"] == [0.325, 0.325]


def test_napari_opens_an_ome_zarr_folder_through_the_manifest(ome_with_labels, monkeypatch):
    from napari.components import ViewerModel
    from npe2 import PluginManager, PluginManifest

    # This checkout's manifest, not whatever copy of the plugin the environment has installed.
    plugins = PluginManager()
    plugins.register(PluginManifest.from_file(Path(_reader.__file__).with_name("napari.yaml")))
    monkeypatch.setattr(PluginManager, "_PluginManager__instance", plugins)
    path, _, _ = ome_with_labels
    viewer = ViewerModel()
    viewer.open(path, plugin="napari-attnseg")
    assert [layer.name for layer in viewer.layers] == ["cells_c0", "cells_c1", "cells_nuclei"]
    assert viewer.layers["cells_c0"].multiscale and viewer.layers["cells_nuclei"].multiscale
    assert list(viewer.layers["cells_nuclei"].scale) == [0.325, 0.325]


def test_plain_zarr_arrays_and_bad_folders(tmp_path):
    array = zarr.open_array(str(tmp_path / "big.zarr"), mode="w", shape=(300, 200), chunks=(64, 64), dtype="u2")
    array[:] = 7
    [(data, meta, kind)] = _reader.get_reader(str(tmp_path / "big.zarr"))(str(tmp_path / "big.zarr"))
    assert isinstance(data, da.Array) and data.shape == (300, 200) and kind == "image" and meta["name"] == "big"
    (tmp_path / "folder").mkdir()
    assert _reader.get_reader(str(tmp_path / "folder")) is None
    zarr.open_group(str(tmp_path / "empty.zarr"), mode="w")
    with pytest.raises(ValueError, match="without OME-Zarr 'multiscales'"):
        _reader.get_reader(str(tmp_path / "empty.zarr"))(str(tmp_path / "empty.zarr"))
