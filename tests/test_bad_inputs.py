"""The bad-input matrix: every case either works or raises a typed error with a clear message.

Through the API a bad input raises an AttnSegError subclass naming the problem; through the CLI it
exits 2 with exactly one line on stderr. One case per line; `None` as the fragment means "works".
"""

from __future__ import annotations

import json
import pickle
import struct

import numpy as np
import pytest
import tifffile
import torch
from safetensors.torch import save as save_safetensors

import napari_attnseg as nas
from napari_attnseg.cli import main
from napari_attnseg.config import InferConfig, ModelConfig, TrainConfig
from napari_attnseg.errors import AttnSegError, ConfigError, DeviceError, InputError, ModelFileError
from napari_attnseg.files.images import read_image
from napari_attnseg.files.loading import load_model
from napari_attnseg.files.modelfile import FORMAT_VERSION, save_model
from napari_attnseg.inference.inputs import check_labels
from napari_attnseg.runtime import devices
from napari_attnseg.train.targets import instance_targets

from .helpers import rewrite_metadata

RNG = np.random.default_rng(0)
CPU = InferConfig(device="cpu", tile_size=64, overlap=8)
ONE_STEP = TrainConfig(max_seconds=30, max_epochs=1, steps_per_epoch=1, batch_size=1, crop_size=32,
                       val_fraction=0.0, device="cpu")


def _noise(*shape, dtype=np.float32):
    return RNG.random(shape).astype(dtype)


# id, image, channel_axis, spatial shape of the labels when it works / message fragment when it fails
IMAGES = [
    ("1d", np.zeros(10), None, "is neither"),
    ("4d-without-channel-axis", np.zeros((2, 3, 16, 16)), None, "give channel_axis"),
    ("5d", np.zeros((2, 2, 3, 16, 16)), None, "is neither"),
    ("zero-size", np.zeros((0, 16)), None, "empty"),
    ("1x1", np.zeros((1, 1)), None, "too small"),
    ("3x3", np.zeros((3, 3)), None, "too small"),
    ("4x5000", _noise(4, 5000), None, (4, 5000)),
    ("5000x4", _noise(5000, 4), None, (5000, 4)),
    ("bool", np.zeros((16, 16), dtype=bool), None, "must hold numbers"),
    ("complex", np.zeros((16, 16), dtype=complex), None, "must hold numbers"),
    ("strings", np.full((16, 16), "a"), None, "must hold numbers"),
    ("int8", RNG.integers(-128, 127, (24, 24)).astype(np.int8), None, (24, 24)),
    ("uint32", RNG.integers(0, 2**32 - 1, (24, 24), dtype=np.uint32), None, (24, 24)),
    ("uint64-huge", np.full((24, 24), 2**63, dtype=np.uint64), None, (24, 24)),
    ("float16", _noise(24, 24, dtype=np.float16), None, (24, 24)),
    ("nan", np.where(_noise(24, 24) > 0.5, np.nan, 1.0), None, "NaN"),
    ("inf", np.full((24, 24), np.inf), None, "infinite"),
    ("beyond-float32", np.full((24, 24), 1e300), None, "float32 range"),
    ("all-constant", np.full((24, 24), 7, dtype=np.uint16), None, (24, 24)),
    ("all-zero", np.zeros((24, 24), dtype=np.uint8), None, (24, 24)),
    ("rgb", _noise(24, 24, 3), None, (24, 24)),
    ("rgba", _noise(24, 24, 4), None, (24, 24)),
    ("rgb-channels-first", _noise(3, 24, 24), 0, (24, 24)),
    ("z-stack", _noise(3, 24, 24), None, (3, 24, 24)),
    ("z-stack-with-channels", _noise(2, 24, 24, 3), -1, (2, 24, 24)),
    ("2-channels-for-1-channel-model", _noise(24, 24, 2), -1, "reads 1 channel"),
    ("5-channels-for-1-channel-model", _noise(5, 24, 24), 0, "reads 1 channel"),
    ("2-trailing-channels-no-axis", _noise(24, 24, 2), None, "channel_axis=-1"),
    ("channel-axis-out-of-range", _noise(24, 24, 3), 5, "does not exist"),
    ("channel-axis-negative-out-of-range", _noise(24, 24, 3), -4, "does not exist"),
    ("channel-axis-on-a-spatial-axis", _noise(24, 24, 3), 0, "is channel_axis right"),
    ("channel-axis-on-a-grey-image", _noise(24, 24), -1, "has no channel axis"),
]
# numpy arrays a TIFF cannot hold (or holds differently) are not tried through files
NOT_A_TIFF = {"zero-size", "strings"}


def _ids(cases):
    return [case[0] for case in cases]


def _check(call, expected, error_type=AttnSegError):
    """Run ``call``; a tuple ``expected`` is the labels' shape, a string the error's fragment."""
    if isinstance(expected, tuple):
        labels = call()
        assert labels.shape == expected and labels.dtype == np.int32
        return labels
    with pytest.raises(error_type, match=expected):
        call()
    return None


def _cli(argv, capsys) -> tuple[int, list[str]]:
    """Exit code and stderr lines of the CLI, run in this process."""
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip().splitlines()


def _assert_one_line_exit_2(code, lines, fragment):
    assert code == 2, lines
    assert len(lines) == 1 and fragment in lines[0], lines


@pytest.fixture
def model_file(tmp_path, tiny_model):
    return save_model(tiny_model, tmp_path / "tiny.model")


# -- images --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, image, channel_axis, expected", IMAGES, ids=_ids(IMAGES))
def test_segment(tiny_model, name, image, channel_axis, expected):
    _check(lambda: nas.segment(image, tiny_model, CPU, channel_axis=channel_axis), expected, InputError)


@pytest.mark.parametrize("name, image, channel_axis, expected", IMAGES, ids=_ids(IMAGES))
def test_finetune(tiny_model, name, image, channel_axis, expected):
    labels = np.zeros(expected if isinstance(expected, tuple) else (16, 16), dtype=np.int32)

    def tune():
        tuned = nas.finetune(tiny_model, [image], [labels], config=ONE_STEP, channel_axis=channel_axis)
        return nas.segment(image, tuned, CPU, channel_axis=channel_axis)

    _check(tune, expected, InputError)


@pytest.mark.parametrize("name, image, channel_axis, expected",
                         [case for case in IMAGES if case[0] not in NOT_A_TIFF],
                         ids=[case[0] for case in IMAGES if case[0] not in NOT_A_TIFF])
def test_cli_segment(tmp_path, capsys, model_file, name, image, channel_axis, expected):
    tifffile.imwrite(tmp_path / "image.tif", image)
    argv = ["segment", tmp_path / "image.tif", "-o", tmp_path / "out", "--model", model_file, "--device", "cpu"]
    if channel_axis is not None:
        argv.append(f"--channel-axis={channel_axis}")
    code, lines = _cli(argv, capsys)
    if isinstance(expected, tuple):
        assert code == 0 and lines == []
        assert tifffile.imread(tmp_path / "out" / "image_labels.tif").shape == expected
    else:
        _assert_one_line_exit_2(code, lines, expected)
        assert not (tmp_path / "out" / "image_labels.tif").exists()


@pytest.mark.parametrize("image, channel_axis, expected", [
    (_noise(24, 24), None, "reads 3 channel"),
    (_noise(24, 24, 4), -1, "reads 3 channel"),
    (_noise(24, 24, 3), -1, (24, 24)),
    (_noise(3, 24, 24), 0, (24, 24)),
], ids=["grey", "rgba", "rgb-last", "rgb-first"])
def test_images_for_a_3_channel_model(image, channel_axis, expected):
    rgb_model = nas.new_model(ModelConfig(in_channels=3, base_width=4, depth=3), seed=0)
    _check(lambda: nas.segment(image, rgb_model, CPU, channel_axis=channel_axis), expected, InputError)


def _tiff_bytes(image) -> bytes:
    import io

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image)
    return buffer.getvalue()


GOOD_TIFF = _tiff_bytes(_noise(64, 64))
FILES = [
    ("missing", None, "no such"),
    ("text-named-tif", b"hello, I am not an image", "could not be read"),
    ("empty-file", b"", "could not be read"),
    ("truncated-tiff", GOOD_TIFF[: len(GOOD_TIFF) // 2], "could not be read"),
    ("tiff-header-only", GOOD_TIFF[:16], "could not be read"),
    ("png-magic-then-garbage", b"\x89PNG\r\n\x1a\n" + b"x" * 64, "could not be read"),
]


@pytest.mark.parametrize("name, payload, fragment", FILES, ids=_ids(FILES))
def test_read_image_file(tmp_path, name, payload, fragment):
    suffix = ".png" if name.startswith("png") else ".tif"
    path = tmp_path / f"{name}{suffix}"
    if payload is not None:
        path.write_bytes(payload)
    with pytest.raises(InputError, match=fragment):
        read_image(path)


@pytest.mark.parametrize("name, payload, fragment", FILES, ids=_ids(FILES))
def test_cli_segment_file(tmp_path, capsys, model_file, name, payload, fragment):
    path = tmp_path / f"{name}.tif"
    if payload is not None:
        path.write_bytes(payload)
    code, lines = _cli(["segment", path, "-o", tmp_path / "out", "--model", model_file], capsys)
    _assert_one_line_exit_2(code, lines, fragment)


def test_read_image_refuses_a_folder_and_an_unknown_type(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)
    (tmp_path / "notes.txt").write_text("text")
    with pytest.raises(InputError, match="unsupported file type .txt"):
        read_image(tmp_path / "notes.txt")


def test_cli_folder_of_mixed_sizes_segments_each_at_its_own_size(tmp_path, capsys, model_file):
    shapes = {"a": (40, 90), "b": (128, 32), "c": (64, 64, 3)}
    (tmp_path / "in").mkdir()
    for stem, shape in shapes.items():
        tifffile.imwrite(tmp_path / "in" / f"{stem}.tif", _noise(*shape))
    code, lines = _cli(["segment", tmp_path / "in", "-o", tmp_path / "out", "--model", model_file], capsys)
    assert code == 0, lines
    for stem, shape in shapes.items():
        assert tifffile.imread(tmp_path / "out" / f"{stem}_labels.tif").shape == shape[:2]


@pytest.mark.parametrize("planes", [3, 4])
def test_label_stack_of_3_or_4_planes_is_not_stored_as_rgb(tmp_path, capsys, model_file, planes):
    tifffile.imwrite(tmp_path / "stack.tif", _noise(planes, 24, 24), photometric="minisblack")
    code, lines = _cli(["segment", tmp_path / "stack.tif", "-o", tmp_path / "out", "--model", model_file], capsys)
    assert code == 0, lines
    with tifffile.TiffFile(tmp_path / "out" / "stack_labels.tif") as written:
        assert written.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK
        assert written.asarray().shape == (planes, 24, 24)


def test_cli_folder_without_images(tmp_path, capsys, model_file):
    (tmp_path / "empty").mkdir()
    code, lines = _cli(["segment", tmp_path / "empty", "-o", tmp_path / "out", "--model", model_file], capsys)
    _assert_one_line_exit_2(code, lines, "holds no images")


def test_cli_batch_with_one_bad_image_writes_the_good_ones(tmp_path, capsys, model_file):
    tifffile.imwrite(tmp_path / "good.tif", _noise(32, 32))
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    code, lines = _cli(["segment", tmp_path / "bad.tif", tmp_path / "good.tif", "-o", tmp_path / "out",
                        "--model", model_file], capsys)
    assert code == 2
    assert len(lines) == 2 and "bad.tif" in lines[0] and "1 of 2" in lines[1], lines
    assert (tmp_path / "out" / "good_labels.tif").exists()


# -- labels --------------------------------------------------------------------------------------
SHAPE = (48, 64)


def _objects(count_y, count_x):
    """count_y x count_x objects tiling the image (one pixel each when it is small)."""
    return (np.arange(count_y * count_x).reshape(count_y, count_x) + 1).astype(np.int32)


# id, labels for an image of SHAPE, fragment (None: accepted)
LABELS = [
    ("shape-differs", np.zeros((48, 63), np.int32), "differs"),
    ("3d-for-a-2d-image", np.zeros((2, *SHAPE), np.int32), "differs"),
    ("negative", np.full(SHAPE, -1, np.int32), "negative"),
    ("integral-floats", np.where(_noise(*SHAPE) > 0.5, 2.0, 0.0), None),
    ("non-integral-floats", np.full(SHAPE, 0.5), "whole numbers"),
    ("nan-floats", np.full(SHAPE, np.nan), "whole numbers"),
    ("strings", np.full(SHAPE, "1"), "integer array"),
    ("ids-beyond-int32", np.full(SHAPE, 2**40, np.int64), "too large for int32"),
    ("bool", _noise(*SHAPE) > 0.5, None),
    ("uint16", np.ones(SHAPE, np.uint16), None),
    ("all-background", np.zeros(SHAPE, np.int32), None),
    ("one-object-covers-the-image", np.ones(SHAPE, np.int32), None),
    ("3072-one-pixel-objects", _objects(*SHAPE), None),
]


@pytest.mark.parametrize("name, labels, fragment", LABELS, ids=_ids(LABELS))
def test_training_targets(name, labels, fragment):
    if fragment:
        with pytest.raises(InputError, match=fragment):
            check_labels(labels, SHAPE)
    else:
        targets = instance_targets(check_labels(labels, SHAPE))
        assert targets.shape == SHAPE and set(np.unique(targets)) <= {0, 1, 2}
        assert (targets > 0).sum() == (np.asarray(labels) > 0).sum()


@pytest.mark.parametrize("name, labels, fragment", LABELS, ids=_ids(LABELS))
def test_finetune_labels(tiny_model, name, labels, fragment):
    image = _noise(*SHAPE)
    if fragment:
        with pytest.raises(InputError, match=fragment):
            nas.finetune(tiny_model, [image], [labels], config=ONE_STEP)
    else:
        assert len(nas.finetune(tiny_model, [image], [labels], config=ONE_STEP).history) == 1


@pytest.mark.parametrize("name, labels, fragment", LABELS, ids=_ids(LABELS))
def test_evaluate_labels(name, labels, fragment):
    truth = np.zeros(SHAPE, np.int32)
    truth[10:20, 10:20] = 1
    if fragment:
        with pytest.raises(InputError, match=fragment):
            nas.evaluate(labels, truth)
    else:
        scores = nas.evaluate(labels, truth)
        assert 0.0 <= scores["ap50"] <= 1.0 and scores["n_true"] == 1


@pytest.mark.parametrize("name, labels, fragment",
                         [case for case in LABELS if case[0] != "strings"],
                         ids=[case[0] for case in LABELS if case[0] != "strings"])
def test_cli_evaluate_labels(tmp_path, capsys, name, labels, fragment):
    tifffile.imwrite(tmp_path / "pred.tif", labels)
    tifffile.imwrite(tmp_path / "true.tif", np.zeros(SHAPE, np.int32))
    code, lines = _cli(["evaluate", tmp_path / "pred.tif", tmp_path / "true.tif", "--json"], capsys)
    if fragment:
        _assert_one_line_exit_2(code, lines, fragment)
    else:
        assert code == 0 and lines == []


@pytest.mark.parametrize("name, labels, fragment",
                         [case for case in LABELS if case[2] and case[0] != "strings"],
                         ids=[case[0] for case in LABELS if case[2] and case[0] != "strings"])
def test_cli_finetune_labels(tmp_path, capsys, model_file, name, labels, fragment):
    tifffile.imwrite(tmp_path / "image.tif", _noise(*SHAPE))
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    code, lines = _cli(["finetune", "--images", tmp_path / "image.tif", "--labels", tmp_path / "labels.tif",
                        "-o", tmp_path / "tuned.model", "--model", model_file, "--device", "cpu"], capsys)
    _assert_one_line_exit_2(code, lines, fragment)
    assert not (tmp_path / "tuned.model").exists()


def test_100000_objects_are_handled_quickly(tiny_model):
    import time

    labels = _objects(250, 400)  # 100 000 one-pixel objects
    image = _noise(250, 400)
    start = time.perf_counter()
    assert instance_targets(labels).max() == 2
    assert nas.evaluate(labels, labels)["ap50"] == 1.0
    nas.finetune(tiny_model, [image], [labels], config=ONE_STEP)
    assert time.perf_counter() - start < 60


MASKS = [
    ("checks-no-pixel", np.zeros(SHAPE, bool), "check no pixel"),
    ("shape-differs", np.ones((10, 10), bool), "mask shape"),
    ("uint8-mask", np.ones(SHAPE, np.uint8), None),
]


@pytest.mark.parametrize("name, mask, fragment", MASKS, ids=_ids(MASKS))
def test_finetune_masks(tiny_model, name, mask, fragment):
    image, labels = _noise(*SHAPE), np.ones(SHAPE, np.int32)
    if fragment:
        with pytest.raises(InputError, match=fragment):
            nas.finetune(tiny_model, [image], [labels], masks=[mask], config=ONE_STEP)
    else:
        assert nas.finetune(tiny_model, [image], [labels], masks=[mask], config=ONE_STEP).history


def test_evaluate_mask_that_checks_nothing_scores_an_empty_comparison():
    labels = np.ones(SHAPE, np.int32)
    scores = nas.evaluate(labels, labels * 0, mask=np.zeros(SHAPE, bool))
    assert scores["n_true"] == scores["n_pred"] == 0 and scores["ap50"] == 1.0


# -- model files ---------------------------------------------------------------------------------
class _CreatesMarker:
    """Unpickling this calls open(marker, "w"): the file appears if anyone ever unpickles it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))




def _write_model(kind, path, marker, tiny_model):
    """Write a model file of the given ``kind`` to ``path``."""
    evil = {"weights": _CreatesMarker(marker)}
    if kind in ("pickle-protocol-0", "pickle-protocol-2", "pickle-protocol-5"):
        path.write_bytes(pickle.dumps(evil, protocol=int(kind[-1])))
    elif kind == "torch-zip":
        torch.save(evil, path)
    elif kind == "torch-legacy":
        torch.save(evil, path, _use_new_zipfile_serialization=False)
    else:
        save_model(tiny_model, path)
        payload = path.read_bytes()
        pickled = pickle.dumps(evil).decode("latin-1")
        if kind == "truncated":
            path.write_bytes(payload[: len(payload) // 2])
        elif kind == "header-only":
            (length,) = struct.unpack("<Q", payload[:8])
            path.write_bytes(payload[: 8 + length])
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "text":
            path.write_text("these are not weights")
        elif kind == "huge-header-length":
            path.write_bytes(struct.pack("<Q", 2**62) + payload[8:])
        elif kind == "foreign-safetensors":
            path.write_bytes(save_safetensors({"w": torch.zeros(3)}))
        elif kind == "newer-version":
            rewrite_metadata(path, format_version=str(FORMAT_VERSION + 1))
        elif kind == "unreadable-version":
            rewrite_metadata(path, format_version="one")
        elif kind == "config-mismatch":
            rewrite_metadata(path, config=json.dumps(tiny_model.config.to_dict() | {"base_width": 16}))
        elif kind == "config-unknown-option":
            rewrite_metadata(path, config=json.dumps(tiny_model.config.to_dict() | {"wings": 2}))
        elif kind == "config-not-json":
            rewrite_metadata(path, config="{depth: 3")
        elif kind == "pickle-as-card":
            rewrite_metadata(path, card=pickled)
        elif kind == "pickle-as-extra-metadata":
            rewrite_metadata(path, payload_pickle=pickled)
    return path


# kind, fragment of the error (None: loads, and the pickle inside is never touched)
MODEL_FILES = [
    ("truncated", "damaged|truncated"),
    ("header-only", "damaged|truncated"),
    ("empty", "too short"),
    ("text", "not a napari-attnseg model"),
    ("huge-header-length", "not a napari-attnseg model"),
    ("foreign-safetensors", "not a napari-attnseg model"),
    ("newer-version", "upgrade"),
    ("unreadable-version", "unreadable format version"),
    ("config-mismatch", "do not fit"),
    ("config-unknown-option", "no option"),
    ("config-not-json", "configuration is invalid"),
    ("pickle-protocol-0", "not a napari-attnseg model"),
    ("pickle-protocol-2", "never unpickles"),
    ("pickle-protocol-5", "never unpickles"),
    ("torch-zip", "never unpickles"),
    ("torch-legacy", "never unpickles"),
    ("pickle-as-card", "configuration is invalid"),
    ("pickle-as-extra-metadata", None),
]


@pytest.mark.parametrize("kind, fragment", MODEL_FILES, ids=_ids(MODEL_FILES))
def test_load_model_file(tmp_path, monkeypatch, tiny_model, kind, fragment):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    path = _write_model(kind, tmp_path / f"{kind}.model", marker, tiny_model)
    assert not marker.exists()
    if fragment:
        with pytest.raises(ModelFileError, match=fragment):
            load_model(path)
    else:
        assert load_model(path).config == tiny_model.config
    assert not marker.exists(), "loading a model file ran code"


@pytest.mark.parametrize("kind, fragment", [case for case in MODEL_FILES if case[1]],
                         ids=[case[0] for case in MODEL_FILES if case[1]])
def test_cli_model_file(tmp_path, capsys, tiny_model, kind, fragment):
    import re

    marker = tmp_path / "pwned"
    path = _write_model(kind, tmp_path / f"{kind}.model", marker, tiny_model)
    tifffile.imwrite(tmp_path / "image.tif", _noise(32, 32))
    code, lines = _cli(["segment", tmp_path / "image.tif", "-o", tmp_path / "out", "--model", path], capsys)
    assert code == 2 and len(lines) == 1 and re.search(fragment, lines[0]), lines
    code, lines = _cli(["info", path], capsys)
    assert code == 2 and len(lines) == 1 and re.search(fragment, lines[0]), lines
    assert not marker.exists()


def test_model_path_that_is_missing_or_a_folder(tmp_path):
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nope.model")
    with pytest.raises(ModelFileError, match="is a folder"):
        load_model(tmp_path)


# -- options -------------------------------------------------------------------------------------
OPTIONS = [
    ("negative-epochs", lambda: TrainConfig(max_epochs=-1), ConfigError, "max_epochs"),
    ("zero-epochs", lambda: TrainConfig(max_epochs=0), ConfigError, "max_epochs"),
    ("zero-time-budget", lambda: TrainConfig(max_seconds=0), ConfigError, "max_seconds"),
    ("negative-time-budget", lambda: TrainConfig(max_seconds=-5), ConfigError, "max_seconds"),
    ("tile-size-below-16", lambda: InferConfig(tile_size=8), ConfigError, "tile_size"),
    ("overlap-beyond-half-a-tile", lambda: InferConfig(tile_size=64, overlap=40), ConfigError, "overlap"),
    ("batch-size-negative", lambda: InferConfig(batch_size=-1), ConfigError, "batch_size"),
    ("memory-budget-negative", lambda: InferConfig(memory_budget_mb=-5), ConfigError, "memory_budget_mb"),
    ("negative-min-size", lambda: InferConfig(min_size=-1), ConfigError, "min_size"),
    ("threshold-above-1", lambda: InferConfig(prob_threshold=1.5), ConfigError, "prob_threshold"),
    ("unknown-device-in-config", lambda: InferConfig(device="tpu"), ConfigError, "device"),
    ("unknown-device-resolved", lambda: devices.resolve_device("tpu"), DeviceError, "unknown device"),
    ("unknown-precision", lambda: TrainConfig(precision="fp8"), ConfigError, "precision"),
    ("crop-size-below-16", lambda: TrainConfig(crop_size=8), ConfigError, "crop_size"),
]


@pytest.mark.parametrize("name, make, error_type, fragment", OPTIONS, ids=_ids(OPTIONS))
def test_option(name, make, error_type, fragment):
    with pytest.raises(error_type, match=fragment):
        make()


def test_finetune_with_zero_seconds(tiny_model):
    with pytest.raises(ConfigError, match="max_seconds"):
        nas.finetune(tiny_model, [_noise(*SHAPE)], [np.ones(SHAPE, np.int32)], max_seconds=0)


def test_tile_smaller_than_the_network_minimum_is_raised_to_it():
    deep = nas.new_model(ModelConfig(base_width=4, depth=6), seed=0)  # needs multiples of 32
    labels = nas.segment(_noise(40, 50), deep, InferConfig(device="cpu", tile_size=16, overlap=0))
    assert labels.shape == (40, 50)


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)


@pytest.mark.parametrize("device, fragment", [("cuda", "no usable CUDA"), ("mps", "Metal")])
def test_absent_gpu_is_an_error_not_a_silent_fallback(tiny_model, no_gpu, device, fragment):
    with pytest.raises(DeviceError, match=fragment):
        nas.segment(_noise(32, 32), tiny_model, InferConfig(device=device))
    with pytest.raises(DeviceError, match=fragment):
        nas.finetune(tiny_model, [_noise(*SHAPE)], [np.ones(SHAPE, np.int32)],
                     config=ONE_STEP.replace(device=device))


def test_auto_falls_back_to_the_cpu(tiny_model, no_gpu):
    assert nas.predict(_noise(32, 32), tiny_model, InferConfig(device="auto")).device == "cpu"


CLI_OPTIONS = [
    ("negative-epochs", ["finetune", "--epochs", "-1"], "max_epochs"),
    ("zero-time-budget", ["finetune", "--max-seconds", "0"], "max_seconds"),
    ("epochs-not-a-number", ["finetune", "--epochs", "many"], "invalid int"),
    ("tile-size-below-16", ["segment", "--tile-size", "8"], "tile_size"),
    ("negative-min-size", ["segment", "--min-size", "-3"], "min_size"),
    ("threshold-above-1", ["segment", "--prob-threshold", "1.5"], "prob_threshold"),
    ("channel-axis-not-a-number", ["segment", "--channel-axis", "last"], "invalid int"),
    ("unknown-device", ["segment", "--device", "tpu"], "invalid choice"),
    ("cuda-absent-segment", ["segment", "--device", "cuda"], "no usable CUDA"),
    ("cuda-absent-finetune", ["finetune", "--device", "cuda"], "no usable CUDA"),
    ("mps-absent", ["segment", "--device", "mps"], "Metal"),
    ("model-output-is-a-folder", ["finetune", "-o", "."], "is a folder"),
    ("model-output-folder-missing", ["finetune", "-o", "nowhere/tuned.model"], "does not exist"),
    ("segment-without-output", ["segment"], "required"),
]


@pytest.mark.parametrize("name, argv, fragment", CLI_OPTIONS, ids=_ids(CLI_OPTIONS))
def test_cli_option(tmp_path, capsys, monkeypatch, no_gpu, model_file, name, argv, fragment):
    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("image.tif", _noise(*SHAPE))
    tifffile.imwrite("labels.tif", np.ones(SHAPE, np.int32))
    command, options = argv[0], argv[1:]
    if command == "segment":
        full = ["segment", "image.tif"] + ([] if name == "segment-without-output" else ["-o", "out"])
    else:
        full = ["finetune", "--images", "image.tif", "--labels", "labels.tif"]
        full += [] if "-o" in options else ["-o", "tuned.model"]
    code, lines = _cli(full + ["--model", model_file] + options, capsys)
    _assert_one_line_exit_2(code, lines, fragment)
    assert not (tmp_path / "out").exists() and not (tmp_path / "tuned.model").exists()
