import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
from npe2 import PluginManifest

from napari_attnseg import _reader, _writer
from napari_attnseg._sample_data import nuclei_sample

ROOT = Path(__file__).resolve().parents[1]


def test_manifest_is_valid_and_top_level_copy_is_the_same():
    manifest = PluginManifest.from_file(ROOT / "src" / "napari_attnseg" / "napari.yaml")
    assert manifest.name == "napari-attnseg"
    assert (ROOT / "napari.yaml").read_text() == (ROOT / "src" / "napari_attnseg" / "napari.yaml").read_text()


def test_importing_the_package_and_its_reader_does_not_import_torch():
    code = ("import sys, napari_attnseg, napari_attnseg._reader, napari_attnseg._sample_data; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_reader_opens_images_and_label_files(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.ones((10, 12), np.uint16))
    tifffile.imwrite(tmp_path / "a_labels.tif", np.ones((10, 12), np.int32))
    assert _reader.get_reader(str(tmp_path / "a.czi")) is None
    reader = _reader.get_reader([str(tmp_path / "a.tif"), str(tmp_path / "a_labels.tif")])
    layers = reader([str(tmp_path / "a.tif"), str(tmp_path / "a_labels.tif")])
    assert [layer_type for _, _, layer_type in layers] == ["image", "labels"]


def test_writer_round_trips_labels(tmp_path):
    labels = np.arange(20, dtype=np.int32).reshape(4, 5)
    written = _writer.write_labels_layer(str(tmp_path / "out.tif"), labels, {})
    np.testing.assert_array_equal(tifffile.imread(written[0]), labels)


def test_sample_data_is_an_image_with_its_truth():
    (image, image_meta, image_type), (labels, _, labels_type) = nuclei_sample()
    assert image_type == "image" and labels_type == "labels"
    assert image.shape == labels.shape and labels.max() > 10


def test_sample_opens_in_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-attnseg", "nuclei")
    assert [layer.name for layer in viewer.layers] == ["nuclei", "nuclei_truth"]
