"""Files from others cannot steer writes: CLI outputs stay in -o; a project file stays in its folder.

(Model files that try to run code are in test_bad_inputs.py: test_load_model_file.)
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tifffile

from napari_attnseg.cli import main
from napari_attnseg.errors import InputError
from napari_attnseg.files.modelfile import save_model
from napari_attnseg.inference.batch import label_path
from napari_attnseg.project.folder import Project


def _files(root) -> set[str]:
    return {os.path.relpath(os.path.join(folder, name), root)
            for folder, _, names in os.walk(root) for name in names}


# the input as given on the command line (relative to the work folder), the label file expected in -o
ODD_NAMES = [
    ("sub/../dots.tif", "dots_labels.tif"),
    ("sub/../../outside_in.tif", "outside_in_labels.tif"),
    ("..tif", "._labels.tif"),
    ("./-looks-like-an-option.tif", "-looks-like-an-option_labels.tif"),
    ("with space and ünïcödé.tif", "with space and ünïcödé_labels.tif"),
    ("new\nline.tif", "new\nline_labels.tif"),
    ("$(touch pwned).tif", "$(touch pwned)_labels.tif"),
    ("sub/deeper/nested.TIF", "nested_labels.tif"),
]


@pytest.mark.parametrize("given, expected", ODD_NAMES, ids=[repr(given) for given, _ in ODD_NAMES])
def test_cli_writes_only_inside_the_output_folder(tmp_path, monkeypatch, tiny_model, given, expected):
    work = tmp_path / "work"
    (work / "sub" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(work)
    model = save_model(tiny_model, tmp_path / "m.model")
    image_path = os.path.normpath(work / given) if ".." in given else work / given
    tifffile.imwrite(image_path, np.random.default_rng(0).random((24, 24)).astype(np.float32))
    before = _files(tmp_path)
    assert main(["segment", given, "-o", "out", "--model", str(model)]) == 0
    created = _files(tmp_path) - before
    assert created == {os.path.join("work", "out", expected)}
    assert not (work / "pwned").exists()


def test_a_symlink_in_the_output_folder_is_replaced_not_followed(tmp_path, tiny_model):
    model = save_model(tiny_model, tmp_path / "m.model")
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros((24, 24), np.uint8))
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cells_labels.tif").symlink_to(victim)
    assert main(["segment", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "out"), "--model", str(model),
                 "--overwrite"]) == 0
    assert victim.read_text() == "keep me"
    written = tmp_path / "out" / "cells_labels.tif"
    assert not written.is_symlink() and tifffile.imread(written).shape == (24, 24)


def test_a_dangling_symlink_counts_as_an_existing_output(tmp_path, tiny_model, capsys):
    model = save_model(tiny_model, tmp_path / "m.model")
    tifffile.imwrite(tmp_path / "cells.tif", np.zeros((24, 24), np.uint8))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "cells_labels.tif").symlink_to(tmp_path / "elsewhere.tif")
    assert main(["segment", str(tmp_path / "cells.tif"), "-o", str(tmp_path / "out"), "--model", str(model)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert not (tmp_path / "elsewhere.tif").exists()


def test_label_path_is_always_a_direct_child(tmp_path):
    for name in ("../../x.tif", "/etc/passwd", "a/b/c.tif", ".hidden.tif"):
        assert label_path(tmp_path / "out", name).parent == tmp_path / "out"


# -- project files -------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path):
    tifffile.imwrite(tmp_path / "img0.tif", np.zeros((16, 16), np.uint8))
    Project.open(tmp_path).save()
    return tmp_path


def _write_manifest(folder, change) -> None:
    path = folder / "attnseg_project" / "project.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _set_image(key, value):
    def change(manifest):
        manifest["images"][0][key] = value
    return change


def _set(key, value):
    def change(manifest):
        manifest[key] = value
    return change


# id, change to a valid manifest, fragment of the error
MANIFESTS = [
    ("parent-path", _set_image("file", "../../etc/passwd"), "inside the project folder"),
    ("absolute-path", _set_image("file", "/etc/passwd"), "inside the project folder"),
    ("windows-parent-path", _set_image("file", "..\\..\\secret.tif"), "inside the project folder"),
    ("windows-drive", _set_image("file", "C:\\secret.tif"), "inside the project folder"),
    ("empty-name", _set_image("file", ""), "inside the project folder"),
    ("model-parent-path", _set("model", "../../evil.model"), "inside the project folder"),
    ("model-absolute-path", _set("model", "/tmp/evil.model"), "inside the project folder"),
    ("model-not-text", _set("model", 5), "must be a file name"),
    ("file-not-text", _set_image("file", 3), "needs a file name"),
    ("image-not-a-mapping", _set("images", ["img0.tif"]), "needs a file name"),
    ("images-not-a-list", _set("images", {"img0.tif": "new"}), "must be a list"),
    ("unknown-status", _set_image("status", "perfect"), "unknown status"),
    ("status-not-text", _set_image("status", ["new"]), "unknown status"),
    ("updated-not-text", _set_image("updated", 12), "must be text"),
    ("newer-version", _set("version", 99), "newer napari-attnseg; upgrade"),
    ("version-not-a-number", _set("version", "1"), "unreadable version"),
    ("foreign-format", _set("format", "someone-else"), "not a napari-attnseg project"),
]


@pytest.mark.parametrize("name, change, fragment", MANIFESTS, ids=[case[0] for case in MANIFESTS])
def test_project_file_is_validated(folder, name, change, fragment):
    _write_manifest(folder, change)
    with pytest.raises(InputError, match=fragment):
        Project.open(folder)


@pytest.mark.parametrize("content", ["{not json", "", "\x00\x01binary", "[1, 2, 3]", "null", '"text"'],
                         ids=["broken-json", "empty", "binary", "a-list", "null", "a-string"])
def test_project_file_that_is_not_a_json_object(folder, content):
    (folder / "attnseg_project" / "project.json").write_text(content)
    with pytest.raises(InputError, match="damaged|not a napari-attnseg project"):
        Project.open(folder)


def test_project_file_naming_an_image_that_is_gone_is_ignored(folder):
    _write_manifest(folder, lambda manifest: manifest["images"].append({"file": "ghost.tif", "status": "new"}))
    assert [entry.file for entry in Project.open(folder).entries] == ["img0.tif"]
