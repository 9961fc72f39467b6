"""An 8192x8192 uint16 image segmented chunk by chunk into a zarr array: time and peak RSS.

    .venv/bin/python benchmarks/bench_large.py [--size 8192] [--chunk 1024] [--halo 64] [--json out.json] [--quick]

The image is written to a zarr array first (in a temporary folder), then read back chunk by chunk,
so the whole float probability stack is never in memory; peak RSS is this process's maximum.
--quick: a 1024x1024 image in 512-pixel chunks (a smoke check).
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import argument_parser, headline, write_json  # benchmarks/_report.py: this folder is on sys.path


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--halo", type=int, default=64)
    args = parser.parse_args()
    if args.quick:
        args.size, args.chunk = 1024, 512

    import zarr

    import napari_attnseg as nas
    from napari_attnseg.inference.chunked import segment_zarr

    model = nas.load_model()
    with tempfile.TemporaryDirectory() as folder:
        source = zarr.open_array(str(Path(folder) / "image.zarr"), mode="w", shape=(args.size, args.size),
                                 chunks=(args.chunk, args.chunk), dtype=np.uint16)
        tile, _ = nas.synthetic_nuclei((1024, 1024), seed=3, radius_range=(8.0, 12.0))
        for index, row in enumerate(range(0, args.size, 1024)):  # block by block, never all at once
            for col in range(0, args.size, 1024):
                block = np.rot90(tile, (index + col // 1024) % 4)  # vary the blocks a little
                source[row: row + 1024, col: col + 1024] = block[: args.size - row, : args.size - col]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        segment_zarr(str(Path(folder) / "image.zarr"), str(Path(folder) / "labels.zarr"), model,
                     chunk=args.chunk, halo=args.halo)
        seconds = time.perf_counter() - started
        labels = zarr.open_array(str(Path(folder) / "labels.zarr"), mode="r")
        objects = int(max(labels[row: row + args.chunk].max() for row in range(0, args.size, args.chunk)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'image':>12s} {'chunk':>6s} {'halo':>5s} {'seconds':>8s} {'MP/s':>6s} {'objects':>8s} "
          f"{'peak RSS MB':>12s} {'(before)':>9s}")
    print(f"{args.size:>6d}x{args.size:<5d} {args.chunk:6d} {args.halo:5d} {seconds:8.1f} "
          f"{args.size ** 2 / 1e6 / seconds:6.2f} {objects:8d} {peak:12.0f} {rss_before:9.0f}")
    row = {"size": args.size, "chunk": args.chunk, "halo": args.halo, "seconds": round(seconds, 2),
           "megapixel_per_s": round(args.size ** 2 / 1e6 / seconds, 3), "objects": objects,
           "peak_rss_mb": round(peak), "rss_before_mb": round(rss_before)}
    case = f"{args.size}x{args.size} zarr, chunks {args.chunk}"
    write_json(args.json, "large", [row], [headline(case, "seconds", row["seconds"]),
                                           headline(case, "peak RSS MB", row["peak_rss_mb"])], args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
