"""Every benchmark runs at its --quick settings and writes the JSON that benchmarks/summary.py reads.

Smoke checks of the scripts, not measurements: each runs in its own process, as `make benchmark` runs it.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from napari_attnseg.datasets import dsb2018

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
ROW_KEYS = {
    "accuracy": {"images", "n_images", "method", "ap50", "ap75", "mean_ap50", "n_true", "seconds_per_image"},
    "hitl": {"type", "rest", "before_ap50", "tuned_ap50", "kept_ap50", "adopted", "seconds", "epochs"},
    "cpu": {"size", "seconds", "network_seconds", "megapixel_per_s", "objects", "peak_rss_mb"},
    "finetune": {"precision", "ms_per_step"},
    "flops": {"network", "precision", "forward_s", "gflop_per_s", "matmul_peak_gflop_per_s", "share_of_peak"},
    "large": {"size", "chunk", "halo", "seconds", "megapixel_per_s", "objects", "peak_rss_mb"},
    "monai": {"method", "precision", "size", "parameters", "seconds", "s_per_megapixel", "peak_rss_mb",
              "seconds_per_round", "speed_vs_monai", "speed_vs_monai_range", "speed_vs_monai_malloc",
              "speed_vs_monai_malloc_range"},
    "ui_latency": {"job", "size", "beats", "max_ms", "p99_ms", "median_ms", "handoff_max_ms"},
    "load": {"images", "written", "rss_mb_at_10", "rss_growth_mb", "peak_rss_mb", "seconds_per_image"},
    "soak": {"elapsed_s", "step", "epoch", "loss", "best_val_ap50", "checkpoints", "rss_mb"},
}


def _run(script: str, json_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCHMARKS.parent / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", "--json", str(json_path)],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("name", ["accuracy", "cpu", "finetune", "flops", "hitl", "large", "load", "monai", "soak",
                                  "ui_latency"])
def test_quick_run_prints_a_table_and_writes_json(name, tmp_path):
    if name in ("accuracy", "hitl") and not (dsb2018.default_folder() / "manifest.json").is_file():
        pytest.skip(f"bench_{name} reads the DSB 2018 folder, which is not at {dsb2018.default_folder()}")
    if name == "monai" and importlib.util.find_spec("monai") is None:
        pytest.skip("bench_monai compares against MONAI, which is not installed (pip install monai)")
    if name == "large" and importlib.util.find_spec("zarr") is None:
        pytest.skip("bench_large writes a zarr array, and zarr is not installed")
    if name == "ui_latency" and not os.environ.get("DISPLAY"):
        pytest.skip("bench_ui_latency opens a napari window and needs a display (pytest-xvfb gives one)")
    json_path = tmp_path / "out" / f"{name}.json"
    result = _run(f"bench_{name}.py", json_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.strip().splitlines()) >= 2  # a header and at least one row on stdout
    report = json.loads(json_path.read_text())
    assert report["benchmark"] == name and report["quick"] is True
    assert {"machine", "created", "rows", "headline"} <= set(report)
    assert report["rows"] and all(ROW_KEYS[name] <= set(row) for row in report["rows"])
    assert report["headline"] and all(set(entry) == {"case", "metric", "value"} for entry in report["headline"])
    if name == "monai":  # the same network under both tilers, each against a whole-image pass
        [checked] = [row["against_whole_image"] for row in report["rows"] if "against_whole_image" in row]
        assert 0.0 <= checked["ours_ap50"] <= 1.0 and checked["monai_sw_mean_abs_difference"] >= 0.0


def _benchmark_module(name: str):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_monai_ratios_are_taken_within_rounds():
    bench_monai = _benchmark_module("bench_monai")

    def result(method, seconds, rss):
        return {"method": method, "precision": "bf16", "size": 1000, "parameters": 1, "seconds": seconds,
                "s_per_megapixel": seconds, "peak_rss_mb": rss}

    # ours is 2x, 3x and 1x as fast as MONAI in the three rounds, while the machine's speed drifts
    timings = [(1.0, 2.0, 2.0), (2.0, 6.0, 5.0), (3.0, 3.0, 3.0)]  # ours, monai, monai+malloc
    rounds = [{(1000, "bf16", method): result(method, seconds, rss=100 + index)
               for method, seconds in zip(("ours", "monai", "monai+malloc"), timing)}
              for index, timing in enumerate(timings)]
    ours = next(row for row in bench_monai.aggregate(rounds) if row["method"] == "ours")
    assert ours["seconds_per_round"] == [1.0, 2.0, 3.0] and ours["seconds"] == 2.0
    assert ours["s_per_megapixel"] == 2.0 and ours["peak_rss_mb"] == 102
    assert ours["speed_vs_monai"] == 2.0 and ours["speed_vs_monai_range"] == [1.0, 3.0]
    assert ours["speed_vs_monai_malloc"] == 2.0 and ours["speed_vs_monai_malloc_range"] == [1.0, 2.5]


def test_summary_makes_one_markdown_table(tmp_path, capsys):
    summary = _benchmark_module("summary")
    for name, value in (("cpu", 0.7123), ("large", 32.9)):
        (tmp_path / f"{name}.json").write_text(json.dumps({
            "benchmark": name, "quick": False, "machine": "test box", "rows": [],
            "headline": [{"case": f"{name} case", "metric": "seconds", "value": value}]}))
    (tmp_path / "notes.json").write_text("[1, 2]")  # not a benchmark report: skipped with a note
    assert summary.main([str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[:4] == ["| benchmark | case | metric | value |", "|---|---|---|---:|",
                                             "| cpu | cpu case | seconds | 0.712 |",
                                             "| large | large case | seconds | 32.9 |"]
    assert "Measured on: test box." in captured.out and "skipped" in captured.err
    assert summary.main([str(tmp_path / "missing")]) == 2
