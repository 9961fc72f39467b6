"""An 8192x8192 uint16 image, segmented two ways: time and peak RSS of each.

    .venv/bin/python benchmarks/bench_large.py [--size 8192] [--chunk 1024] [--halo 64] [--json out.json] [--quick]

1. chunk by chunk into a zarr array: the image is written to a zarr array first (in a temporary
   folder), then read back chunk by chunk;
2. in memory, ``nas.segment(image)`` on a numpy array (its probabilities are blended band by band
   and kept in float16), in a process of its own so its peak RSS is its own.
--quick: a 1024x1024 image in 512-pixel chunks (a smoke check).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import argument_parser, headline, write_json  # benchmarks/_report.py: this folder is on sys.path


def _blocks(size: int):
    """The test image block by block (never all at once): (row, col, uint16 block)."""
    import napari_attnseg as nas

    tile, _ = nas.synthetic_nuclei((1024, 1024), seed=3, radius_range=(8.0, 12.0))
    for index, row in enumerate(range(0, size, 1024)):
        for col in range(0, size, 1024):
            block = np.rot90(tile, (index + col // 1024) % 4)  # vary the blocks a little
            yield row, col, block[: size - row, : size - col]


def _image(size: int) -> np.ndarray:
    image = np.empty((size, size), dtype=np.uint16)
    for row, col, block in _blocks(size):
        image[row: row + block.shape[0], col: col + block.shape[1]] = block
    return image


def in_memory(size: int) -> dict:
    """Run in its own process: nas.segment of a numpy image; seconds and this process's peak RSS."""
    import napari_attnseg as nas

    model = nas.load_model()
    image = _image(size)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    labels = nas.segment(image, model)
    seconds = time.perf_counter() - started
    return {"size": size, "chunk": None, "halo": None, "seconds": round(seconds, 2),
            "megapixel_per_s": round(size ** 2 / 1e6 / seconds, 3), "objects": int(labels.max()),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "rss_before_mb": round(rss_before), "path": "in memory: segment()"}


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--halo", type=int, default=64)
    parser.add_argument("--in-memory-only", action="store_true", help=argparse_hidden())
    args = parser.parse_args()
    if args.quick:
        args.size, args.chunk = 1024, 512
    if args.in_memory_only:
        print(json.dumps(in_memory(args.size)))
        return 0

    import zarr

    import napari_attnseg as nas
    from napari_attnseg.inference.chunked import segment_zarr

    model = nas.load_model()
    with tempfile.TemporaryDirectory() as folder:
        source = zarr.open_array(str(Path(folder) / "image.zarr"), mode="w", shape=(args.size, args.size),
                                 chunks=(args.chunk, args.chunk), dtype=np.uint16)
        for row, col, block in _blocks(args.size):
            source[row: row + block.shape[0], col: col + block.shape[1]] = block
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        segment_zarr(str(Path(folder) / "image.zarr"), str(Path(folder) / "labels.zarr"), model,
                     chunk=args.chunk, halo=args.halo)
        seconds = time.perf_counter() - started
        labels = zarr.open_array(str(Path(folder) / "labels.zarr"), mode="r")
        objects = int(max(labels[row: row + args.chunk].max() for row in range(0, args.size, args.chunk)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [{"size": args.size, "chunk": args.chunk, "halo": args.halo, "seconds": round(seconds, 2),
             "megapixel_per_s": round(args.size ** 2 / 1e6 / seconds, 3), "objects": objects,
             "peak_rss_mb": round(peak), "rss_before_mb": round(rss_before), "path": "zarr, chunk by chunk"}]
    result = subprocess.run([sys.executable, __file__, "--in-memory-only", "--size", str(args.size)],
                            capture_output=True, text=True, check=True)
    rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(f"{'path':22s} {'image':>12s} {'chunk':>6s} {'seconds':>8s} {'MP/s':>6s} {'objects':>8s} "
          f"{'peak RSS MB':>12s} {'(before)':>9s}")
    for row in rows:
        print(f"{row['path']:22s} {row['size']:>6d}x{row['size']:<5d} {row['chunk'] or '-':>6} "
              f"{row['seconds']:8.1f} {row['megapixel_per_s']:6.2f} {row['objects']:8d} {row['peak_rss_mb']:12.0f} "
              f"{row['rss_before_mb']:9.0f}")
    headlines = []
    for row in rows:
        case = f"{args.size}x{args.size} {row['path']}"
        headlines += [headline(case, "seconds", row["seconds"]), headline(case, "peak RSS MB", row["peak_rss_mb"])]
    write_json(args.json, "large", rows, headlines, args.quick)
    return 0


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
