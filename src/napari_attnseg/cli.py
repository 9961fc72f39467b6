"""`attnseg`: segment, fine-tune, evaluate and inspect models from the command line.

Exit codes: 0 success, 2 bad input (one line on stderr, no traceback), 1 a file could not be written
(disk full, read-only folder) or memory ran out, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

from .config import DEVICES, PRECISIONS, InferConfig, TrainConfig
from .errors import AttnSegError, InputError, OutOfMemory, SaveError

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Segment nuclei and cells with an attention U-Net, fine-tune it on your corrected labels, and
score the results. Images: TIFF (2D, multi-page Z-stacks), PNG or JPEG. Labels are written as
32-bit TIFFs, one object per id, 0 for background.

examples:
  attnseg segment images/*.tif -o labels/
  attnseg finetune --images a.tif b.tif --labels a_labels.tif b_labels.tif -o my.model
  attnseg segment images/*.tif -o labels_tuned/ --model my.model
  attnseg evaluate labels_tuned/a_labels.tif truth/a.tif
  attnseg info my.model
  attnseg segment-zarr big.ome.zarr              # labels into big.ome.zarr/labels/attnseg
  attnseg export my.model --format bioimageio -o my_model.zip
  attnseg segment images/*.tif -o labels_onnx/ --model my.onnx
"""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="attnseg", description=DESCRIPTION,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details while working")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    seg = commands.add_parser("segment", help="write instance labels for each image",
                              description="Segment each image and write OUTDIR/<name>_labels.tif.")
    seg.add_argument("images", nargs="+", type=Path, metavar="IMAGE",
                     help="image files, or folders whose images are all segmented")
    seg.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR",
                     help="folder for the label images (created if missing)")
    _add_model_options(seg)
    seg.add_argument("--tile-size", type=int, default=InferConfig.tile_size,
                     help=f"largest tile edge in pixels (default {InferConfig.tile_size})")
    seg.add_argument("--prob-threshold", type=float, default=InferConfig.prob_threshold,
                     help=f"foreground probability threshold (default {InferConfig.prob_threshold})")
    seg.add_argument("--min-size", type=int, default=InferConfig.min_size,
                     help=f"remove objects smaller than this many pixels (default {InferConfig.min_size})")
    seg.add_argument("--diameter", type=float, default=None, metavar="PIXELS",
                     help="the objects' typical diameter; images are rescaled to the size the model knows "
                          "(default: measured on each image)")
    seg.add_argument("--channel-axis", type=int, default=None,
                     help="axis holding colour channels, e.g. -1 for (Y, X, C) images")
    seg.add_argument("--overwrite", action="store_true", help="replace label files that exist")

    tune = commands.add_parser("finetune", help="fine-tune a model on images and corrected labels",
                               description="Fine-tune a model; only pixels inside --masks count.")
    tune.add_argument("--images", nargs="+", type=Path, required=True, metavar="IMAGE")
    tune.add_argument("--labels", nargs="+", type=Path, required=True, metavar="LABELS",
                      help="instance label images, one per image, same order")
    tune.add_argument("--masks", nargs="+", type=Path, metavar="MASK",
                      help="optional images, non-zero where a human checked the labels")
    tune.add_argument("-o", "--output", type=Path, required=True, metavar="MODEL",
                      help="where to save the fine-tuned model")
    _add_model_options(tune)
    tune.add_argument("--max-seconds", type=float, default=TrainConfig.max_seconds,
                      help=f"time budget (default {TrainConfig.max_seconds:g})")
    tune.add_argument("--epochs", type=int, default=TrainConfig.max_epochs,
                      help=f"epoch budget (default {TrainConfig.max_epochs})")
    tune.add_argument("--seed", type=int, default=TrainConfig.seed, help=f"random seed (default {TrainConfig.seed})")
    tune.add_argument("--checkpoint-every", type=float, default=TrainConfig.checkpoint_every_s, metavar="SECONDS",
                      help="save the best model so far to MODEL this often, so a killed run keeps it "
                           f"(default {TrainConfig.checkpoint_every_s:g})")

    big = commands.add_parser(
        "segment-zarr", help="segment a large 2D zarr array or OME-Zarr image chunk by chunk (dask)",
        description="Segment a 2D zarr array or an OME-Zarr image (NGFF 0.4/0.5) larger than memory, chunk by "
                    "chunk with halos, on this machine or a dask.distributed cluster. An OME-Zarr image gets "
                    "its labels as SOURCE/labels/NAME (an OME-Zarr labels image) unless -o is given. Needs "
                    "`pip install napari-attnseg[dask]`.")
    big.add_argument("source", metavar="SOURCE.zarr", help="a 2D zarr array, or an OME-Zarr image group")
    big.add_argument("-o", "--output", default=None, metavar="LABELS.zarr",
                     help="new zarr to write (required for a plain array; default for OME-Zarr: SOURCE/labels/NAME)")
    _add_model_options(big)
    big.add_argument("--chunk", type=int, default=1024, help="chunk edge in pixels (default 1024)")
    big.add_argument("--halo", type=int, default=64,
                     help="context around each chunk; larger than the largest object's radius (default 64)")
    big.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="dask.distributed scheduler, e.g. tcp://10.0.0.5:8786 (default: this machine)")
    big.add_argument("--name", default="attnseg", help="OME-Zarr labels name (default attnseg)")
    big.add_argument("--levels", type=int, default=3,
                     help="OME-Zarr labels resolution levels, each half the size of the one before (default 3)")

    ev = commands.add_parser("evaluate", help="score predicted labels against true labels")
    ev.add_argument("prediction", type=Path, metavar="PRED")
    ev.add_argument("truth", type=Path, metavar="TRUE")
    ev.add_argument("--json", action="store_true", help="print the scores as JSON")

    info = commands.add_parser("info", help="describe a model file (or 'default')")
    info.add_argument("model", metavar="MODEL", help="a model file, or 'default' for the bundled one")
    _add_trust_option(info)

    exp = commands.add_parser(
        "export", help="export a model to ONNX, TorchScript or a bioimage.io package",
        description="Export a model for other tools; every export is run and compared with torch before it is "
                    "written. Needs `pip install 'napari-attnseg[export]'`.")
    exp.add_argument("model", metavar="MODEL", help="a model file, or 'default' for the bundled one")
    exp.add_argument("--format", required=True, choices=("onnx", "torchscript", "bioimageio"),
                     help="onnx (onnxruntime and most runtimes), torchscript (PyTorch without our code), "
                          "bioimageio (a model-zoo package: a folder, or a .zip)")
    exp.add_argument("-o", "--output", type=Path, required=True, metavar="PATH",
                     help="file to write (.onnx, .pt), or package folder / .zip")
    exp.add_argument("--opset", type=int, default=None,
                     help="ONNX operator set (default: export.ONNX_OPSET, 17)")
    exp.add_argument("--author", action="append", metavar="NAME",
                     help="author named in a bioimage.io package (repeatable)")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing file")
    _add_trust_option(exp)
    return parser


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, metavar="MODEL",
                        help="model file (default: the bundled nuclei model)")
    parser.add_argument("--device", default="auto", choices=DEVICES,
                        help="where to compute (default auto: cuda, then mps, then cpu)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="arithmetic of the network (default auto: fp16 on a GPU, bf16 on a CPU "
                             "with native bf16, else fp32); fp32 for results that do not depend on "
                             "the machine's bf16 support")
    _add_trust_option(parser)


def _add_trust_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trust-code", action="store_true",
                        help="allow a TorchScript model: loading one runs the program inside it")


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    handlers = {"segment": _segment, "finetune": _finetune, "evaluate": _evaluate, "info": _info,
                "segment-zarr": _segment_zarr, "export": _export}
    try:
        return handlers[args.command](args)
    except (SaveError, OutOfMemory) as error:  # disk full, read-only folder, no memory: not the input's fault
        print(f"attnseg {args.command}: error: {error}", file=sys.stderr)
        return 1
    except AttnSegError as error:
        print(f"attnseg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # disk full, read-only folder, permission denied: say which file
        print(f"attnseg {args.command}: error: {error.strerror or error}: {error.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"attnseg {args.command}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as error:
        from .runtime.memory import is_out_of_memory

        if not is_out_of_memory(error):
            raise  # a bug: keep its traceback
        print(f"attnseg {args.command}: error: out of memory; try a smaller --tile-size, or segment-zarr for "
              "images larger than memory", file=sys.stderr)
        return 1


def _load(model_argument: str | None, trust_code: bool = False):
    from .files.loading import load_model

    if model_argument in (None, "default"):
        return load_model()
    return load_model(Path(model_argument), trust_code=trust_code)


def _segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .inference.batch import expand_images, plan_outputs, segment_files_steps
    from .inference.predict import drain
    from .runtime.devices import resolve_device

    config = InferConfig(device=args.device, precision=args.precision, tile_size=args.tile_size,
                         overlap=min(InferConfig.overlap, args.tile_size // 2),
                         prob_threshold=args.prob_threshold, min_size=args.min_size, diameter=args.diameter)
    resolve_device(config.device)  # an absent GPU is reported before any work starts
    images = expand_images(args.images)
    outputs = plan_outputs(images, args.output, args.overwrite)
    model = _load(args.model, args.trust_code)
    # Progress bars only on a terminal: a log file or a pipe gets just the error lines.
    with tqdm(total=len(images), desc="images", unit="image", disable=None if len(images) > 1 else True) as bar:
        def show(progress) -> None:
            if progress.result is None:
                return
            if progress.result.error:
                bar.write(f"attnseg segment: error: {progress.image}: {progress.result.error}", file=sys.stderr)
            bar.update(1)

        results = drain(segment_files_steps(images, outputs, model, config, args.channel_axis), show)
    failed = sum(result.error is not None for result in results)
    if failed and len(images) > 1:
        print(f"attnseg segment: {failed} of {len(images)} images could not be segmented", file=sys.stderr)
    return 2 if failed else 0


def _segment_zarr(args: argparse.Namespace) -> int:
    from .runtime.devices import resolve_device

    try:
        import zarr  # noqa: F401

        from .inference.chunked import segment_zarr
    except ImportError:
        raise InputError("segment-zarr needs dask and zarr: pip install 'napari-attnseg[dask]'") from None
    config = InferConfig(device=args.device, precision=args.precision)
    resolve_device(config.device)
    if not Path(args.source).exists():
        raise InputError(f"no such zarr array or OME-Zarr image: {args.source}")
    if args.output is not None and Path(args.output).exists():
        raise InputError(f"{args.output} exists; choose a new output path")
    if args.levels < 1:
        raise InputError(f"--levels must be at least 1, got {args.levels}")
    written = segment_zarr(args.source, args.output, _load(args.model, args.trust_code), config, args.chunk,
                           args.halo, args.scheduler, name=args.name, levels=args.levels)
    print(f"wrote {written}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .config import TrainConfig
    from .files.images import read_image
    from .files.modelfile import save_model
    from .inference.predict import drain
    from .runtime.devices import resolve_device
    from .train.training import train_steps

    if len(args.labels) != len(args.images):
        raise InputError(f"got {len(args.images)} images but {len(args.labels)} label files; "
                         "give one label file per image")
    if args.masks and len(args.masks) != len(args.images):
        raise InputError(f"got {len(args.images)} images but {len(args.masks)} masks")
    config = TrainConfig(max_seconds=args.max_seconds, max_epochs=args.epochs, seed=args.seed,
                         device=args.device, precision=args.precision, checkpoint_every_s=args.checkpoint_every)
    resolve_device(config.device)
    _check_writable(args.output)
    images = [read_image(path) for path in args.images]
    labels = [read_image(path) for path in args.labels]
    masks = [read_image(path) > 0 for path in args.masks] if args.masks else None
    model = _load(args.model, args.trust_code)
    with tqdm(total=100, desc="fine-tuning", unit="%", bar_format="{l_bar}{bar}| {postfix}", disable=None) as bar:
        def show(progress) -> None:
            bar.n = int(100 * progress.fraction)
            if progress.val is not None:
                bar.set_postfix(epoch=progress.epoch, loss=f"{progress.loss:.3f}",
                                val_ap50=f"{progress.val['ap50']:.3f}")
            bar.refresh()

        tuned = drain(train_steps(model, images, labels, masks, config, names=[path.name for path in args.images],
                                  checkpoint=args.output), show)
    save_model(tuned, args.output)
    validation = tuned.card.get("validation") or {}
    if validation.get("before") and validation.get("after"):
        print(f"validation AP50: {validation['before']['ap50']:.3f} before, "
              f"{validation['after']['ap50']:.3f} after")
    print(f"saved {args.output}")
    return 0


def _check_writable(path: Path) -> None:
    """Fail before a long training run, not after it, if the model cannot be saved."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name for the model, e.g. {path / 'tuned.model'}")
    if not folder.exists():
        raise InputError(f"folder {folder} does not exist")
    import os

    if not os.access(folder, os.W_OK):
        raise InputError(f"cannot write to folder {folder}")


def _evaluate(args: argparse.Namespace) -> int:
    from .files.images import read_image
    from .metrics import evaluate

    scores = evaluate(read_image(args.prediction), read_image(args.truth))
    if args.json:
        print(json.dumps(scores))
    else:
        for key, value in scores.items():
            print(f"{key:12s} {value:.4f}" if isinstance(value, float) else f"{key:12s} {value}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .files.export import export_model
    from .files.torch_export import require

    needs = {"onnx": ["onnx", "onnxscript", "onnxruntime"], "torchscript": [],
             "bioimageio": ["onnx", "onnxscript", "onnxruntime", "bioimageio.spec"]}
    for module in needs[args.format]:
        require(module, f"export --format {args.format}")
    output = args.output
    if output.exists() and not (args.overwrite and output.is_file()):
        raise InputError(f"{output} exists; " + ("pass --overwrite to replace it" if output.is_file()
                                                 else "choose a new path for the package"))
    if not (output.parent if str(output.parent) else Path(".")).is_dir():
        raise InputError(f"folder {output.parent} does not exist")
    model = _load(args.model, args.trust_code)
    options = {"onnx": {} if args.opset is None else {"opset": args.opset}, "torchscript": {},
               "bioimageio": {"authors": args.author}}[args.format]
    report = export_model(model, output, args.format, **options)
    for kind in ("onnx", "torchscript"):
        details = report if report["format"] == kind else report.get(kind)
        if details:
            opset = f" opset {details['opset']}," if kind == "onnx" else ""
            print(f"{kind}:{opset} max abs difference to torch {details['max_abs_difference']:.1e} "
                  f"on shapes {details['checked_shapes']}")
    if report["format"] == "bioimageio":
        print(f"bioimage.io validation (bioimageio.spec, offline): {report['validation']}")
    print(f"wrote {output}")
    return 0


def _info(args: argparse.Namespace) -> int:
    model = _load(args.model, args.trust_code)
    print(model.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
