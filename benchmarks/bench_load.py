"""Many small images through the CLI's batch function in one process: memory and time per image.

    .venv/bin/python benchmarks/bench_load.py [--images 200] [--size 64] [--model tiny|default] [--json out.json]

Writes --images synthetic images to a temporary folder, segments them with
`napari_attnseg.inference.batch.segment_files_steps` (what `attnseg segment FOLDER -o OUT` runs) and prints
the resident memory (/proc/self/statm) after image 10 and after the last one, the peak RSS of the
process and the seconds per image. Linux only (it reads /proc).
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import argument_parser, headline, write_json  # benchmarks/_report.py: this folder is on sys.path


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run(n_images: int, size: int, model_name: str) -> dict:
    import tifffile

    import napari_attnseg as nas
    from napari_attnseg.config import InferConfig, ModelConfig
    from napari_attnseg.inference.batch import expand_images, plan_outputs, segment_files_steps

    model = nas.load_model() if model_name == "default" else nas.new_model(ModelConfig(base_width=8, depth=3))
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "images"
        source.mkdir()
        base, _ = nas.synthetic_nuclei((size, size), seed=0, radius_range=(5.0, 8.0))
        for index in range(n_images):
            tifffile.imwrite(source / f"img{index:04d}.tif", np.roll(base, index, axis=index % 2))
        images = expand_images([source])
        outputs = plan_outputs(images, Path(folder) / "labels", overwrite=False)
        rss_at: dict[int, float] = {}
        start = time.perf_counter()
        for progress in segment_files_steps(images, outputs, model, InferConfig(device="cpu")):
            if progress.result is not None and progress.index + 1 in (10, n_images):
                rss_at[progress.index + 1] = rss_mb()
        seconds = time.perf_counter() - start
        written = sum(1 for _ in (Path(folder) / "labels").iterdir())
    return {"images": n_images, "size": size, "model": model_name, "written": written,
            "rss_mb_at_10": round(rss_at[10], 1), f"rss_mb_at_{n_images}": round(rss_at[n_images], 1),
            "rss_growth_mb": round(rss_at[n_images] - rss_at[10], 1), "peak_rss_mb": round(peak_rss_mb(), 1),
            "seconds_per_image": round(seconds / n_images, 4)}


def main() -> int:
    parser = argument_parser(__doc__, quick_help="20 images")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", choices=("tiny", "default"), default="tiny")
    args = parser.parse_args()
    if args.quick:
        args.images = 20
    if not sys.platform.startswith("linux"):
        parser.error("this benchmark reads /proc/self/statm (Linux only)")
    if args.images < 10:
        parser.error("--images must be at least 10")
    row = run(args.images, args.size, args.model)
    n = args.images
    print(f"{'images':>6s} {'size':>5s} {'model':>7s} {'written':>7s} {'RSS@10 MB':>10s} {f'RSS@{n} MB':>11s} "
          f"{'growth MB':>9s} {'peak MB':>8s} {'s/image':>8s}")
    print(f"{n:6d} {args.size:5d} {args.model:>7s} {row['written']:7d} {row['rss_mb_at_10']:10.1f} "
          f"{row[f'rss_mb_at_{n}']:11.1f} {row['rss_growth_mb']:9.1f} {row['peak_rss_mb']:8.1f} "
          f"{row['seconds_per_image']:8.4f}")
    case = f"{n} images of {args.size}² ({args.model} model)"
    write_json(args.json, "load", [row], [
        headline(case, "RSS at image 10 MB", row["rss_mb_at_10"]),
        headline(case, f"RSS at image {n} MB", row[f"rss_mb_at_{n}"]),
        headline(case, "seconds per image", row["seconds_per_image"]),
    ], args.quick, model=args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
