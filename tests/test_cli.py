import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_attnseg.cli import main
from napari_attnseg.datasets.synthetic import synthetic_nuclei
from napari_attnseg.files.modelfile import save_model


@pytest.fixture
def workspace(tmp_path, tiny_model):
    image, truth = synthetic_nuclei((128, 128), seed=4, radius_range=(8.0, 10.0))
    tifffile.imwrite(tmp_path / "cells.tif", image)
    tifffile.imwrite(tmp_path / "cells_truth.tif", truth)
    save_model(tiny_model, tmp_path / "tiny.model")
    return tmp_path


def test_segment_finetune_segment_evaluate_round_trip(workspace, capsys):
    w = workspace
    assert main(["segment", str(w / "cells.tif"), "-o", str(w / "out"), "--model", str(w / "tiny.model")]) == 0
    first = tifffile.imread(w / "out" / "cells_labels.tif")
    assert first.dtype == np.int32 and first.shape == (128, 128)

    assert main(["finetune", "--images", str(w / "cells.tif"), "--labels", str(w / "cells_truth.tif"),
                 "-o", str(w / "tuned.model"), "--model", str(w / "tiny.model"),
                 "--max-seconds", "20", "--epochs", "15"]) == 0
    assert "validation AP50" in capsys.readouterr().out

    assert main(["segment", str(w / "cells.tif"), "-o", str(w / "out2"), "--model", str(w / "tuned.model")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(w / "out2" / "cells_labels.tif"), str(w / "cells_truth.tif"), "--json"]) == 0
    import json

    scores = json.loads(capsys.readouterr().out)
    assert set(scores) >= {"ap50", "ap75", "dice", "precision50", "recall50", "n_true", "n_pred"}
    assert scores["n_true"] == int(len(np.unique(tifffile.imread(w / "cells_truth.tif"))) - 1)

    assert main(["info", str(w / "tuned.model")]) == 0
    assert "fine-tuned" in capsys.readouterr().out


def test_precision_option_reaches_the_engine(workspace, monkeypatch, capsys):
    import napari_attnseg.inference.batch as batch
    import napari_attnseg.train.training as training

    asked = []

    def spy(real):
        def run(*args, **kwargs):
            config = next(arg for arg in args if hasattr(arg, "precision"))
            asked.append((real.__name__, config.precision))
            return real(*args, **kwargs)
        return run

    monkeypatch.setattr(batch, "segment_files_steps", spy(batch.segment_files_steps))
    monkeypatch.setattr(training, "train_steps", spy(training.train_steps))
    w = workspace
    assert main(["segment", str(w / "cells.tif"), "-o", str(w / "out"), "--model", str(w / "tiny.model"),
                 "--precision", "fp32"]) == 0
    assert main(["finetune", "--images", str(w / "cells.tif"), "--labels", str(w / "cells_truth.tif"),
                 "-o", str(w / "tuned.model"), "--model", str(w / "tiny.model"), "--max-seconds", "5",
                 "--epochs", "1", "--precision", "bf16"]) == 0
    assert main(["segment", str(w / "cells.tif"), "-o", str(w / "out2"), "--model", str(w / "tiny.model")]) == 0
    assert asked == [("segment_files_steps", "fp32"), ("train_steps", "bf16"), ("segment_files_steps", "auto")]
    capsys.readouterr()


def test_existing_output_is_not_overwritten_silently(workspace, capsys):
    w = workspace
    args = ["segment", str(w / "cells.tif"), "-o", str(w / "out"), "--model", str(w / "tiny.model")]
    assert main(args) == 0
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["segment", "missing.tif", "-o", "out"], "no such image"),
        (["info", "missing.model"], "not found"),
        (["evaluate", "a.tif"], "required"),
        (["segment", "x.tif", "-o", "o", "--device", "tpu"], "invalid choice"),
        (["segment", "x.tif", "-o", "o", "--precision", "fp8"], "invalid choice"),
        (["finetune", "--images", "a.tif", "b.tif", "--labels", "a.tif", "-o", "m"], "one label file per image"),
        (["export", "default", "--format", "keras", "-o", "m.h5"], "invalid choice"),
        (["export", "missing.model", "--format", "torchscript", "-o", "m.pt"], "not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, fragment, tmp_path):
    result = subprocess.run([sys.executable, "-m", "napari_attnseg.cli", *argv], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_image_is_skipped_with_a_message(workspace, capsys):
    (workspace / "broken.tif").write_bytes(b"II*\x00garbage")
    code = main(["segment", str(workspace / "broken.tif"), str(workspace / "cells.tif"),
                 "-o", str(workspace / "out"), "--model", str(workspace / "tiny.model")])
    assert code == 2
    assert "broken.tif" in capsys.readouterr().err
    assert (workspace / "out" / "cells_labels.tif").exists()


def test_export_torchscript_then_info_needs_trust(workspace, capsys):
    w = workspace
    assert main(["export", str(w / "tiny.model"), "--format", "torchscript", "-o", str(w / "tiny.pt")]) == 0
    out = capsys.readouterr().out
    assert "torchscript: max abs difference to torch" in out and "wrote" in out
    assert main(["export", str(w / "tiny.model"), "--format", "torchscript", "-o", str(w / "tiny.pt")]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["info", str(w / "tiny.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--trust-code" in err[0]
    assert main(["info", str(w / "tiny.pt"), "--trust-code"]) == 0
    assert "runs from:   torchscript file tiny.pt" in capsys.readouterr().out


def test_segment_with_an_exported_onnx_model(workspace, capsys):
    pytest.importorskip("onnxruntime", reason="ONNX models need the 'export' extra")
    pytest.importorskip("onnxscript", reason="ONNX export needs the 'export' extra")
    w = workspace
    assert main(["export", str(w / "tiny.model"), "--format", "onnx", "-o", str(w / "tiny.onnx")]) == 0
    assert "onnx: opset 17, max abs difference" in capsys.readouterr().out
    assert main(["segment", str(w / "cells.tif"), "-o", str(w / "out"), "--model", str(w / "tiny.onnx")]) == 0
    from napari_attnseg import load_model, segment

    expected = segment(tifffile.imread(w / "cells.tif"), load_model(w / "tiny.onnx"))
    np.testing.assert_array_equal(tifffile.imread(w / "out" / "cells_labels.tif"), expected)


def test_export_without_the_extra_names_it(workspace, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    code = main(["export", str(workspace / "tiny.model"), "--format", "onnx", "-o", str(workspace / "x.onnx")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'napari-attnseg[export]'" in err[0]
    assert not (workspace / "x.onnx").exists()
