"""Export to ONNX / TorchScript / bioimage.io and back through the same segment() path."""

import io
import json
import pickle
import shutil
import sys
import zipfile

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="ONNX export needs the 'export' extra: pip install 'napari-attnseg[export]'")
ort = pytest.importorskip("onnxruntime", reason="ONNX models run with onnxruntime from the 'export' extra")
pytest.importorskip("onnxscript", reason="torch's ONNX exporter needs onnxscript from the 'export' extra")

import napari_attnseg as nas  # noqa: E402
from napari_attnseg.config import InferConfig, TrainConfig  # noqa: E402
from napari_attnseg.errors import ExportError, InputError, MissingExtraError, ModelFileError  # noqa: E402
from napari_attnseg.files import torch_export as export  # noqa: E402
from napari_attnseg.files.imported import OnnxNetwork  # noqa: E402
from napari_attnseg.files.loading import load_model  # noqa: E402
from napari_attnseg.files.modelfile import save_model  # noqa: E402
from napari_attnseg.inference.predict import predict  # noqa: E402

FP32 = InferConfig(device="cpu", precision="fp32", tile_size=64, overlap=16)


@pytest.fixture(scope="module")
def tuned(nuclei_pair):
    """The bundled model after two training steps: it finds nuclei and carries a training record."""
    image, truth = nuclei_pair
    config = TrainConfig(max_seconds=60, max_epochs=1, steps_per_epoch=2, batch_size=2, crop_size=64,
                         learning_rate=1e-4, val_fraction=0.0, seed=0)
    return nas.finetune(load_model(), [image], [truth], config=config, names=["cells.tif"])


@pytest.fixture(scope="module")
def onnx_export(tuned, tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tuned.onnx"
    return path, export.export_onnx(tuned, path)


@pytest.fixture(scope="module")
def package(tuned, tmp_path_factory):
    pytest.importorskip("bioimageio.spec", reason="bioimage.io packages need bioimageio.spec from the 'export' extra")
    from napari_attnseg.files.bioimageio import export_bioimageio

    path = tmp_path_factory.mktemp("bioimageio") / "tuned.zip"
    return path, export_bioimageio(tuned, path, authors=["Test Author"])


def test_onnx_file_has_dynamic_axes_and_carries_config_and_card(tuned, onnx_export):
    path, report = onnx_export
    assert report["opset"] == 17 and report["max_abs_difference"] <= export.TOLERANCE
    assert [tuple(shape) for shape in report["checked_shapes"]] == [(2, 1, 64, 96), (1, 1, 40, 88)]
    proto = onnx.load(str(path))
    input_dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [dim.dim_value for dim in input_dims][1] == 1
    assert all(dim.dim_param for index, dim in enumerate(input_dims) if index != 1)  # batch, y, x free
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert json.loads(metadata[export.META_CONFIG]) == tuned.config.to_dict()
    card = json.loads(metadata[export.META_CARD])
    assert card["record"]["images"][0]["name"] == "cells.tif"
    assert card["exported"]["max_abs_difference"] == report["max_abs_difference"]


def test_onnx_model_segments_like_the_original(tuned, onnx_export, nuclei_pair):
    image = nuclei_pair[0][:150, :170]  # not a multiple of the network's 8: tiles are padded
    from_onnx = load_model(onnx_export[0])
    assert isinstance(from_onnx.network, OnnxNetwork)
    assert from_onnx.config == tuned.config and from_onnx.card["record"] == tuned.card["record"]
    torch_probabilities = predict(image, tuned, FP32).probabilities
    onnx_probabilities = predict(image, from_onnx, FP32).probabilities
    assert np.abs(torch_probabilities - onnx_probabilities).max() < 1e-4
    torch_labels, onnx_labels = nas.segment(image, tuned, FP32), nas.segment(image, from_onnx, FP32)
    assert torch_labels.max() >= 5, "the tuned test model should find objects"
    assert nas.evaluate(onnx_labels, torch_labels)["ap50"] >= 0.99
    # the default precision (bf16 autocast on CPUs that have it) must not change what ONNX computes
    np.testing.assert_array_equal(nas.segment(image, from_onnx, FP32.replace(precision="auto")), onnx_labels)
    assert "runs from:   onnx file tuned.onnx" in from_onnx.summary()


def test_onnx_network_tolerates_to_autocast_and_copies(onnx_export):
    model = load_model(onnx_export[0])
    network = model.network.to("cpu").to(memory_format=torch.channels_last).eval()
    tensor = torch.rand(3, 1, 32, 48).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        plain = network(tensor)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits, maps = network(tensor, return_attention=True)
    assert logits.dtype == torch.float32 and maps == [] and logits.shape == (3, 3, 32, 48)
    torch.testing.assert_close(logits, plain)
    torch.testing.assert_close(torch.softmax(plain, 1).sum(1), torch.ones(3, 32, 48))
    copied = model.copy()
    assert copied.network is not model.network and copied.network.session is model.network.session
    # dask.distributed ships models to other processes by pickling them: the session is rebuilt there
    shipped = pickle.loads(pickle.dumps(model))
    assert shipped.network.session is not model.network.session and shipped.config == model.config
    with torch.inference_mode():
        torch.testing.assert_close(shipped.network(tensor), plain)


def test_an_onnx_model_is_not_fine_tuned_saved_or_exported_again(onnx_export, nuclei_pair, tmp_path):
    model = load_model(onnx_export[0])
    with pytest.raises(InputError, match="cannot be fine-tuned"):
        nas.finetune(model, [nuclei_pair[0]], [nuclei_pair[1]], max_seconds=1)
    with pytest.raises(ModelFileError, match="share the exported file"):
        save_model(model, tmp_path / "x.model")
    with pytest.raises(ExportError, match="already runs from an exported file"):
        export.export_torchscript(model, tmp_path / "x.pt")


def test_torchscript_round_trip_needs_trust_and_handles_other_sizes(tuned, nuclei_pair, tmp_path):
    path = tmp_path / "tuned.pt"
    report = export.export_torchscript(tuned, path)
    assert report["max_abs_difference"] <= export.TOLERANCE
    with pytest.raises(ModelFileError, match="trust"):
        load_model(path)
    scripted = load_model(path, trust_code=True)
    assert scripted.config == tuned.config and scripted.card["record"] == tuned.card["record"]
    image = nuclei_pair[0][:120, :100]
    difference = predict(image, tuned, FP32).probabilities - predict(image, scripted, FP32).probabilities
    assert np.abs(difference).max() < 1e-4


def test_a_failed_check_writes_nothing(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="does not reproduce"):
        export.export_torchscript(tiny_model, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


def test_onnx_falls_back_to_the_torchscript_based_exporter(tuned, tmp_path, monkeypatch):
    real_export = torch.onnx.export

    def dynamo_fails(*args, dynamo=True, **kwargs):
        if dynamo:
            raise RuntimeError("unsupported operator")
        return real_export(*args, dynamo=False, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", dynamo_fails)
    report = export.export_onnx(tuned, tmp_path / "legacy.onnx")
    assert report["exporter"] == "torchscript-based" and report["max_abs_difference"] <= export.TOLERANCE
    assert load_model(tmp_path / "legacy.onnx").config == tuned.config


def test_foreign_or_damaged_onnx_files_are_refused(onnx_export, tmp_path):
    proto = onnx.load(str(onnx_export[0]))
    del proto.metadata_props[:]
    onnx.save(proto, str(tmp_path / "foreign.onnx"))
    with pytest.raises(ModelFileError, match="not exported by napari-attnseg"):
        load_model(tmp_path / "foreign.onnx")
    (tmp_path / "broken.onnx").write_bytes(onnx_export[0].read_bytes()[:500])
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        load_model(tmp_path / "broken.onnx")


def test_missing_runtime_names_the_extra(onnx_export, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'napari-attnseg\[export\]'"):
        load_model(onnx_export[0])


def test_bioimageio_package_validates_offline_and_loads_as_zip_and_folder(tuned, package, nuclei_pair, tmp_path):
    from napari_attnseg.files.bioimageio import validate_package

    path, report = package
    assert report["validation"] == "valid-format" and validate_package(path) == "valid-format"
    assert report["max_abs_difference"] <= export.TOLERANCE
    folder = tmp_path / "unpacked"
    shutil.unpack_archive(path, folder)
    image = nuclei_pair[0][:96, :140]
    reference = predict(image, tuned, FP32).probabilities
    for source in (path, folder):
        loaded = load_model(source)
        assert loaded.config == tuned.config and loaded.card["record"] == tuned.card["record"]
        assert np.abs(predict(image, loaded, FP32).probabilities - reference).max() < 1e-4


def test_bioimageio_test_tensors_follow_the_declared_preprocessing(tuned, package):
    import yaml

    from napari_attnseg.files.bioimageio import scale_range

    with zipfile.ZipFile(package[0]) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
        members = {name: archive.read(name) for name in archive.namelist()}
    assert {"README.md", "cover.png", "weights.onnx", "weights_torchscript.pt"} <= set(members)
    assert rdf["license"] == "BSD-3-Clause" and rdf["format_version"].startswith("0.5")
    (raw_tensor,), (output_tensor,) = rdf["inputs"], rdf["outputs"]
    assert [axis.get("size") for axis in raw_tensor["axes"][2:]] == [{"min": 8, "step": 8}] * 2
    (step,) = raw_tensor["preprocessing"]
    assert step["id"] == "scale_range" and step["kwargs"]["axes"] == ["y", "x"]
    assert (step["kwargs"]["min_percentile"], step["kwargs"]["max_percentile"]) == tuned.config.norm_percentiles
    assert output_tensor["axes"][1]["channel_names"] == ["background", "interior", "boundary"]
    raw = np.load(io.BytesIO(members[raw_tensor["test_tensor"]["source"]]))
    expected = np.load(io.BytesIO(members[output_tensor["test_tensor"]["source"]]))
    normalised = scale_range(raw, step["kwargs"]["min_percentile"], step["kwargs"]["max_percentile"])
    session = ort.InferenceSession(members[rdf["weights"]["onnx"]["source"]], providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {session.get_inputs()[0].name: normalised})[0] - expected).max() < 1e-4
    assert np.allclose(expected.sum(axis=1), 1.0, atol=1e-5)


def test_a_tampered_package_fails_validation(package, tmp_path):
    from napari_attnseg.files.bioimageio import validate_package

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package[0]) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            payload = source.read(name)
            if name == "test_output.npy":
                payload = payload[:-4] + b"\x00\x00\x80\x3f"
            target.writestr(name, payload)
    with pytest.raises(ExportError, match="invalid"):
        validate_package(tampered)


def test_a_package_of_someone_else_is_refused(package, tmp_path):
    import yaml

    folder = tmp_path / "foreign"
    shutil.unpack_archive(package[0], folder)
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    del rdf["config"]
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    with pytest.raises(ModelFileError, match="did not export"):
        load_model(folder)



def test_a_package_never_lands_in_a_folder_that_holds_files(tiny_model, tmp_path):
    pytest.importorskip("bioimageio.spec", reason="bioimage.io packages need bioimageio.spec from the 'export' extra")
    from napari_attnseg.files.bioimageio import export_bioimageio

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="exists"):
        export_bioimageio(tiny_model, tmp_path)
    assert sorted(item.name for item in tmp_path.iterdir()) == ["notes.txt"]
