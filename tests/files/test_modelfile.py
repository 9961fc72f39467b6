import json
import os
import pickle

import numpy as np
import pytest
import torch

from napari_attnseg.errors import ModelFileError
from napari_attnseg.files.loading import load_model
from napari_attnseg.files.modelfile import FORMAT_VERSION, save_model

from ..helpers import rewrite_metadata


def test_round_trip_gives_identical_outputs(tiny_model, tmp_path):
    tiny_model.card["history"] = [{"epoch": 1, "val_ap50": 0.5}]
    path = save_model(tiny_model, tmp_path / "tiny.model")
    loaded = load_model(path)
    image = torch.randn(1, 1, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded.network.eval()(image), tiny_model.network.eval()(image))
    assert loaded.config == tiny_model.config
    assert loaded.history == [{"epoch": 1, "val_ap50": 0.5}]
    assert "torch" in loaded.card["versions"]


def test_save_leaves_no_temporary_files(tiny_model, tmp_path):
    save_model(tiny_model, tmp_path / "a.model")
    save_model(tiny_model, tmp_path / "a.model")
    assert sorted(os.listdir(tmp_path)) == ["a.model"]


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, monkeypatch, writer):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.model"
    if writer == "pickle":
        path.write_bytes(pickle.dumps({"weights": _RunsCode()}))
    else:
        torch.save({"weights": _RunsCode()}, path)
    with pytest.raises(ModelFileError, match="never unpickles"):
        load_model(path)
    assert not (tmp_path / "pwned_by_pickle").exists()


def test_truncated_file(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "t.model")
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(ModelFileError, match="damaged|truncated"):
        load_model(path)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "notes.model"
    path.write_text("hello, I am text")
    with pytest.raises(ModelFileError, match="not a napari-attnseg model"):
        load_model(path)




def test_newer_format_asks_for_an_upgrade(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "new.model")
    rewrite_metadata(path, format_version=str(FORMAT_VERSION + 1))
    with pytest.raises(ModelFileError, match="upgrade"):
        load_model(path)


def test_config_that_does_not_fit_the_weights(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "m.model")
    config = tiny_model.config.to_dict() | {"base_width": 16}
    rewrite_metadata(path, config=json.dumps(config))
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nope.model")


def test_bundled_default_model_loads_offline():
    model = load_model()
    assert model.config.task == "instance"
    assert model.name == "attnseg-default-nuclei"
    assert np.isfinite(next(model.network.parameters()).detach().numpy()).all()


def test_saved_files_are_readable_by_others(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "shared.model")
    assert path.stat().st_mode & 0o044 == 0o044


def test_torchscript_files_need_trust_and_must_be_ours(tmp_path):
    scripted = torch.jit.script(torch.nn.Conv2d(1, 3, 1))
    path = tmp_path / "foreign.pt"
    torch.jit.save(scripted, str(path))
    with pytest.raises(ModelFileError, match="trust"):
        load_model(path)
    with pytest.raises(ModelFileError, match="not exported by napari-attnseg"):
        load_model(path, trust_code=True)


def test_exported_models_show_what_was_checked(tiny_model, tmp_path):
    from napari_attnseg.files.torch_export import export_torchscript

    export_torchscript(tiny_model, tmp_path / "tiny.pt")
    summary = load_model(tmp_path / "tiny.pt", trust_code=True).summary()
    assert "exported:    torchscript with torch" in summary and "max abs difference to torch 0.0e+00" in summary
    assert "30,853 parameters" in summary  # from the card: the traced module is not an AttentionUNet


def test_a_card_of_the_wrong_shape_is_summarised_not_raised(tmp_path):
    from napari_attnseg.config import ModelConfig
    from napari_attnseg.files.loading import load_model
    from napari_attnseg.files.modelfile import new_model, save_model

    model = new_model(ModelConfig(base_width=8, depth=3))
    model.card["record"] = {"base_model": "x", "images": "not a list"}
    model.card["exported"] = {"max_abs_difference": "tiny"}
    save_model(model, tmp_path / "odd.model")
    summary = load_model(tmp_path / "odd.model").summary()
    assert "(unreadable training record)" in summary and "(unreadable export report)" in summary


def test_an_unreadable_model_file_is_a_model_file_error(tmp_path, monkeypatch):
    from pathlib import Path

    import pytest

    from napari_attnseg.errors import ModelFileError
    from napari_attnseg.files.loading import load_model

    path = tmp_path / "locked.model"
    path.write_bytes(b"\0" * 64)

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(ModelFileError, match="cannot read .*Permission denied"):
        load_model(path)


def test_a_package_whose_config_is_not_a_mapping_is_refused(tmp_path):
    import pytest

    from napari_attnseg.errors import ModelFileError
    from napari_attnseg.files.loading import load_model

    (tmp_path / "rdf.yaml").write_text("type: model\nconfig: [1, 2]\nweights: {}\n")
    with pytest.raises(ModelFileError, match="did not export"):
        load_model(tmp_path)
