"""Tiled-inference throughput against MONAI's AttentionUnet + sliding_window_inference.

MONAI is what a user would pick instead; it is not a dependency of ours. Install it into the venv for
this benchmark only:

    .venv/bin/pip install monai
    .venv/bin/python benchmarks/bench_monai.py [--sizes 512 2048] [--rounds 3] [--json results.json] [--quick]

Both networks have the same widths (16, 32, 64, 128) and depth, both run tiles of at most 256x256 with
32 pixels of overlap, 4 tiles a batch, on the same uint16 image, percentile-normalised the same way;
both outputs are softmaxed class probabilities (no instance post-processing). Each (method, size) runs
in a fresh subprocess so that its peak RSS is its own. MONAI's network is untrained here, so this
compares speed and memory, not accuracy.

This VM's speed drifts by tens of percent within minutes, so every method runs once per round, the
rounds interleaved (each in another order), and each speed ratio is taken within a round, between
runs seconds apart; the table gives the median seconds and each ratio's median and range over the
rounds. --quick: one 256² image, fp32 only, one round of one repeat (a smoke check).

Methods:
    napari-attnseg       ours at MONAI's tile size (our tiler spreads tiles evenly, so a 512² image
                         takes 9 tiles of 192² where MONAI's sliding window takes 9 of 256²)
    napari-attnseg@768   ours at our default settings (tiles up to 768², one a batch on a CPU)
    monai                MONAI as installed
    monai+malloc         MONAI with the glibc malloc settings our engine makes (allocator.py), to
                         show what share of our lead comes from them
    monai-sw+ours        our trained network in MONAI's sliding window. Its outputs and ours are
                         both compared with one pass of our network over the whole image (no tiles,
                         fp32): mean absolute difference of the probabilities, and AP50 of the
                         instances drawn from them. This says whether our faster tiling and fused
                         network give MONAI's accuracy with the same network.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
from _report import argument_parser, headline, write_json  # benchmarks/_report.py: this folder is on sys.path

TILE, OVERLAP, BATCH = 256, 32, 4
WIDTHS = (16, 32, 64, 128)


def _image(size: int) -> np.ndarray:
    import napari_attnseg as nas

    tile, _ = nas.synthetic_nuclei((512, 512), seed=5, radius_range=(8.0, 12.0))
    reps = -(-size // 512)
    return np.tile(tile, (reps, reps))[:size, :size]


def _ours(precision: str, defaults: bool = False):
    import napari_attnseg as nas
    from napari_attnseg.config import InferConfig
    from napari_attnseg.inference.predict import predict

    model = nas.load_model()
    config = InferConfig(precision=precision, device="cpu")
    if not defaults:
        config = config.replace(tile_size=TILE, overlap=OVERLAP, batch_size=BATCH)
    return (lambda image: predict(image, model, config).probabilities), sum(
        p.numel() for p in model.network.parameters())


def _monai(precision: str, malloc: bool = False, our_network: bool = False):
    import torch
    from monai.inferers import sliding_window_inference
    from monai.networks.nets import AttentionUnet

    from napari_attnseg.inference.inputs import normalize

    if malloc:
        from napari_attnseg.runtime.allocator import keep_freed_memory

        keep_freed_memory()
    torch.manual_seed(0)
    if our_network:
        import napari_attnseg as nas

        network = nas.load_model().network.eval()
    else:
        network = AttentionUnet(spatial_dims=2, in_channels=1, out_channels=3, channels=WIDTHS,
                                strides=(2,) * (len(WIDTHS) - 1)).eval()
    dtype = torch.bfloat16 if precision == "bf16" else None
    if dtype is not None:  # give MONAI the same CPU fast path ours uses
        network = network.to(memory_format=torch.channels_last)

    def run(image: np.ndarray) -> np.ndarray:
        normalised = normalize(image[np.newaxis].astype(np.float32), (1.0, 99.8))
        tensor = torch.from_numpy(normalised[np.newaxis])
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = sliding_window_inference(tensor, (TILE, TILE), BATCH, network,
                                              overlap=OVERLAP / TILE, mode="gaussian")
        return torch.softmax(logits.float(), dim=1)[0].numpy()

    return run, sum(p.numel() for p in network.parameters())


METHODS = {
    "napari-attnseg": _ours,
    "napari-attnseg@768": lambda precision: _ours(precision, defaults=True),
    "monai": _monai,
    "monai+malloc": lambda precision: _monai(precision, malloc=True),
    "monai-sw+ours": lambda precision: _monai(precision, our_network=True),
}


def against_whole_image(monai_output: np.ndarray, image: np.ndarray, precision: str) -> dict:
    """MONAI's sliding window over our network, and our own prediction, each against one
    whole-image pass of our network (no tiles, fp32)."""
    import torch

    import napari_attnseg as nas
    from napari_attnseg.inference.inputs import normalize
    from napari_attnseg.inference.postprocess import instances_from_probabilities

    model = nas.load_model()
    tensor = torch.from_numpy(normalize(image[np.newaxis].astype(np.float32), model.config.norm_percentiles))
    with torch.inference_mode():
        whole = torch.softmax(model.network.eval()(tensor[np.newaxis]), dim=1)[0].numpy()
    reference = instances_from_probabilities(whole)
    result = {}
    for name, output in (("monai_sw", monai_output), ("ours", _ours(precision)[0](image))):
        result[f"{name}_mean_abs_difference"] = round(float(np.abs(output - whole).mean()), 5)
        result[f"{name}_ap50"] = round(nas.evaluate(instances_from_probabilities(output), reference)["ap50"], 4)
    return result


def measure(method: str, precision: str, size: int, repeats: int, accuracy: bool = False) -> dict:
    """Run in this process: warm up, then the median of ``repeats`` timed runs; with ``accuracy`` (for
    monai-sw+ours) also compare both tilers' outputs with a whole-image pass."""
    run, parameters = METHODS[method](precision)
    image = _image(size)
    run(image)  # warm-up at full size: first-call allocations are not what we compare
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        output = run(image)
        seconds.append(time.perf_counter() - started)
    assert output.shape == (3, size, size)
    median = statistics.median(seconds)
    result = {"method": method, "precision": precision, "size": size, "parameters": parameters,
              "seconds": round(median, 3), "s_per_megapixel": round(median / (size * size / 1e6), 3),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if accuracy:  # after the peak RSS is read: this runs ours in the same process
        result["against_whole_image"] = against_whole_image(output, image, precision)
    return result


def _run_one(method: str, precision: str, size: int, repeats: int, accuracy: bool) -> dict:
    command = [sys.executable, __file__, "--one", method, precision, str(size), "--repeats", str(repeats)]
    result = subprocess.run(command + (["--accuracy"] if accuracy else []), capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def _ratio(numbers: list[float]) -> dict:
    return {"median": round(statistics.median(numbers), 3), "min": round(min(numbers), 3),
            "max": round(max(numbers), 3)}


def aggregate(rounds: list[dict]) -> list[dict]:
    """One row per (size, precision, method) from rounds of {(size, precision, method): result}.

    Each speed ratio is taken within a round, between runs seconds apart, and then summed up as the
    median and the range over rounds: this VM's speed drifts by tens of percent over minutes, so a
    ratio of two medians taken minutes apart would carry that drift.
    """
    rows = []
    for key, first in rounds[0].items():
        size, precision, method = key
        per_round = [measured[key] for measured in rounds]
        seconds = [result["seconds"] for result in per_round]
        row = {**first, "seconds": round(statistics.median(seconds), 3), "seconds_per_round": seconds,
               "s_per_megapixel": round(statistics.median(seconds) / (size * size / 1e6), 3),
               "peak_rss_mb": max(result["peak_rss_mb"] for result in per_round)}
        for name, against in (("speed_vs_monai", "monai"), ("speed_vs_monai_malloc", "monai+malloc")):
            ratios = _ratio([measured[(size, precision, against)]["seconds"] / measured[key]["seconds"]
                             for measured in rounds])
            row[name], row[f"{name}_range"] = ratios["median"], [ratios["min"], ratios["max"]]
        rows.append(row)
    return rows


def _with_range(ratio: float, bounds: list[float]) -> str:
    return f"{ratio:.2f}x ({bounds[0]:.2f}-{bounds[1]:.2f})"


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per process (their median)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times every method runs, interleaved with the others (default 3)")
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "PRECISION", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--accuracy", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, precision, size = args.one
        print(json.dumps(measure(method, precision, int(size), args.repeats, args.accuracy)))
        return 0
    precisions = ("fp32", "bf16")
    if args.quick:
        args.sizes, args.repeats, args.rounds, precisions = [256], 1, 1, ("fp32",)

    methods = list(METHODS)
    rounds = []
    try:
        for index in range(args.rounds):
            order = methods[index % len(methods):] + methods[:index % len(methods)]  # no fixed neighbours
            rounds.append({(size, precision, method): _run_one(method, precision, size, args.repeats,
                                                               accuracy=index == 0 and method == "monai-sw+ours")
                           for size in args.sizes for precision in precisions for method in order})
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    rows = aggregate(rounds)
    print(f"tiles up to {TILE}^2, overlap {OVERLAP}, batch {BATCH}, widths {WIDTHS}; class probabilities, "
          f"no post-processing; {args.rounds} interleaved round(s): median seconds, and each ratio's median "
          "(range) over rounds")
    print(f"{'image':>10s} {'precision':>9s} {'method':>18s} {'params':>9s} {'s':>7s} {'s/MP':>7s} "
          f"{'peak RSS MB':>12s} {'vs MONAI':>18s} {'vs MONAI+malloc':>18s}")
    headlines = []
    for row in rows:
        print(f"{row['size']:>5d}x{row['size']:<4d} {row['precision']:>9s} {row['method']:>18s} "
              f"{row['parameters']:9,d} {row['seconds']:7.3f} {row['s_per_megapixel']:7.3f} "
              f"{row['peak_rss_mb']:12.1f} {_with_range(row['speed_vs_monai'], row['speed_vs_monai_range']):>18s} "
              f"{_with_range(row['speed_vs_monai_malloc'], row['speed_vs_monai_malloc_range']):>18s}")
        if row["method"].startswith("napari-attnseg"):
            case = f"{row['size']}x{row['size']} {row['precision']}, {row['method']} against MONAI"
            headlines += [headline(case, "s/MP (ours)", row["s_per_megapixel"]),
                          headline(case, "speed vs MONAI", _with_range(row["speed_vs_monai"],
                                                                       row["speed_vs_monai_range"])),
                          headline(case, "speed vs MONAI+malloc", _with_range(row["speed_vs_monai_malloc"],
                                                                              row["speed_vs_monai_malloc_range"]))]
    agreeing = [row for row in rows if "against_whole_image" in row]
    if agreeing:
        print("against one whole-image pass of our network (fp32, no tiles): mean |probability difference|"
              " and AP50 of the instances")
        print(f"{'image':>10s} {'precision':>9s} {'MONAI sw, our net':>18s} {'AP50':>7s} {'ours':>9s} {'AP50':>7s}")
    for row in agreeing:
        agrees = row["against_whole_image"]
        print(f"{row['size']:>5d}x{row['size']:<4d} {row['precision']:>9s} "
              f"{agrees['monai_sw_mean_abs_difference']:18.5f} {agrees['monai_sw_ap50']:7.4f} "
              f"{agrees['ours_mean_abs_difference']:9.5f} {agrees['ours_ap50']:7.4f}")
        case = f"{row['size']}x{row['size']} {row['precision']}, AP50 against a whole-image pass"
        headlines += [headline(case, "MONAI's tiler, our network", agrees["monai_sw_ap50"]),
                      headline(case, "ours", agrees["ours_ap50"])]
    write_json(args.json, "monai", rows, headlines, args.quick, tile=TILE, overlap=OVERLAP, batch=BATCH,
               rounds=args.rounds, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
