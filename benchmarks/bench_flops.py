"""How close the network runs to this CPU's limit: FLOPs per pixel, achieved GFLOP/s, matmul peak.

    .venv/bin/python benchmarks/bench_flops.py [--json out.json] [--quick]

FLOPs are counted by torch's FlopCounterMode on one forward pass (a multiply-add counts 2); the
peak is the best of a few large matrix products timed on the same machine, in fp32 and bf16: square
ones through torch.mm (MKL) and 1x1 convolutions of 1024 channels (oneDNN, which the network's
convolutions use; in fp32 on this AMD CPU it ran 2.3x faster than MKL). Both the training network
and the fused inference copy that segmentation runs (model/fused.py) are timed, with the malloc
settings the engine makes before it predicts (allocator.py); the FLOPs are the training network's
(the copy drops only batch norm). Timings on a 2-core machine vary by 10-20 % between runs.
--quick: one repeat and smaller matrices (a smoke check: the peak it reports is an underestimate).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch
from _report import argument_parser, headline, write_json  # benchmarks/_report.py: this folder is on sys.path
from torch.utils.flop_counter import FlopCounterMode

import napari_attnseg as nas
from napari_attnseg.model.fused import inference_network
from napari_attnseg.runtime.allocator import keep_freed_memory

TILE, BATCH = 256, 4


def _time(fn, repeats: int = 5) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argument_parser(__doc__)
    args = parser.parse_args()
    repeats = 1 if args.quick else 5
    matrix_sizes = (512, 1024) if args.quick else (1024, 2048, 3072)
    conv_sides = (16,) if args.quick else (32, 64)
    keep_freed_memory()  # as predict() does
    network = nas.load_model().network.eval()
    networks = {"unfused": network, "fused": inference_network(network, torch.device("cpu"))}
    tiles = torch.randn(BATCH, 1, TILE, TILE).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        network(tiles)
    flops = counter.get_total_flops()
    per_pixel = flops / (BATCH * TILE * TILE)

    rows = []
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        peak = 0.0
        for size in matrix_sizes:  # the best of a few sizes stands for the peak
            a = torch.randn(size, size, dtype=dtype or torch.float32)
            b = torch.randn(size, size, dtype=dtype or torch.float32)
            peak = max(peak, 2 * size**3 / _time(lambda a=a, b=b: torch.mm(a, b), repeats) / 1e9)
        for side in conv_sides:  # a 1x1 convolution is a matrix product run by oneDNN
            x = torch.randn(4, 1024, side, side, dtype=dtype or torch.float32).contiguous(
                memory_format=torch.channels_last)
            w = torch.randn(1024, 1024, 1, 1, dtype=dtype or torch.float32).contiguous(
                memory_format=torch.channels_last)
            with torch.inference_mode():
                seconds = _time(lambda x=x, w=w: torch.nn.functional.conv2d(x, w), repeats)
            peak = max(peak, 2 * 4 * side * side * 1024**2 / seconds / 1e9)
        for kind, net in networks.items():
            def forward(dtype=dtype, net=net):
                with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.float32,
                                                            enabled=dtype is not None):
                    net(tiles)

            seconds = _time(forward, repeats)
            rows.append((kind, name, seconds, flops / seconds / 1e9, peak))

    print(f"network: {flops / 1e9:.2f} GFLOP per forward of {BATCH} x {TILE}^2 tiles = "
          f"{per_pixel / 1e3:.1f} kFLOP per pixel; threads {torch.get_num_threads()}")
    print(f"{'network':>8s} {'precision':>9s} {'forward s':>10s} {'GFLOP/s':>8s} {'matmul peak GFLOP/s':>20s} "
          f"{'share of peak':>14s}")
    for kind, name, seconds, achieved, peak in rows:
        print(f"{kind:>8s} {name:>9s} {seconds:10.3f} {achieved:8.1f} {peak:20.1f} {achieved / peak:13.0%}")
    table = [{"network": kind, "precision": name, "forward_s": round(seconds, 4), "gflop_per_s": round(achieved, 1),
              "matmul_peak_gflop_per_s": round(peak, 1), "share_of_peak": round(achieved / peak, 3)}
             for kind, name, seconds, achieved, peak in rows]
    headlines = [headline("network FLOPs", "kFLOP per pixel", round(per_pixel / 1e3, 1))]
    headlines += [headline(f"forward {BATCH} x {TILE}^2, {row['network']}, {row['precision']}",
                           "GFLOP/s (share of matmul peak)",
                           f"{row['gflop_per_s']:.1f} ({row['share_of_peak']:.0%})") for row in table]
    write_json(args.json, "flops", table, headlines, args.quick, gflop_per_forward=round(flops / 1e9, 3),
               kflop_per_pixel=round(per_pixel / 1e3, 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
