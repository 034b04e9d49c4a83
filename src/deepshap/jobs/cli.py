"""``deepshap explain``: the job API on the command line."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
JOB_MODULES = ("zarr", "pyarrow", "PIL")  # the jobs extra, checked before a model is loaded


def add_explain_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``explain`` subcommand to the ``deepshap`` parser's subcommands."""
    summary = "explain every image of a dataset into a resumable Zarr store and Parquet index"
    parser = commands.add_parser(
        "explain",
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}. Rerunning the same command resumes the job.",
    )
    parser.set_defaults(error=parser.error)
    parser.add_argument(
        "--model", required=True, help="MODULE:FUNCTION, a .keras file, a .pt2 or TorchScript file"
    )
    parser.add_argument("--data", required=True, help="a folder of PNG/JPEG images or a .npy array")
    parser.add_argument("--explainer", required=True, choices=("deep", "gradient", "partition"))
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="the store's folder")
    parser.add_argument(
        "--background",
        default="100",
        metavar="N|PATH",
        help="N images sampled from the data (seeded), or a "
        ".npy file or folder of background images (default: %(default)s)",
    )
    parser.add_argument(
        "--outputs", default="all", metavar="K|all", help="explain the top-K classes per image"
    )
    parser.add_argument(
        "--batch-size", type=int, default=32, metavar="B", help="images per chunk (default: 32)"
    )
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--address", default=None, help="the Ray cluster to join (with --engine ray)")
    parser.add_argument(
        "--actors", type=int, default=None, metavar="N", help="--engine ray: actors in the pool"
    )
    parser.add_argument(
        "--threads-per-actor", type=int, default=None, metavar="T", help="--engine ray: threads per actor"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the background sample and the explainers")
    parser.add_argument(
        "--dtype", choices=("float32", "float16"), default="float32", help="of the attributions"
    )
    parser.add_argument(
        "--image-size", type=_size, default=None, metavar="WxH", help="the model's image size"
    )
    parser.add_argument(
        "--resize", action="store_true", help="resize images of another size (else: an error)"
    )
    parser.add_argument("--crop", action="store_true", help="center-crop to the aspect ratio before resizing")
    parser.add_argument("--grayscale", action="store_true", help="decode images to one channel")
    parser.add_argument("--channels-first", action="store_true", help="give the model NCHW images")
    parser.add_argument(
        "--class-names", type=Path, default=None, metavar="FILE", help="one class name a line"
    )
    parser.add_argument("--nsamples", type=int, default=None, help="gradient: samples per image")
    parser.add_argument("--max-evals", type=int, default=None, help="partition: model evaluations per image")
    parser.add_argument("--masker", default=None, help='partition: the Image masker, e.g. "blur(8,8)"')
    parser.add_argument("--report", type=int, default=8, metavar="N", help="images in DIR/report (0: none)")
    parser.add_argument("--overwrite", action="store_true", help="replace another job's results in DIR")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_explain(args: argparse.Namespace) -> int:
    """Run the job described by the parsed arguments; returns the exit status."""
    missing = [name for name in JOB_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        return _fail(
            f"deepshap explain needs packages that are not installed ({', '.join(missing)}): "
            "pip install 'deepshap[jobs]'."
        )
    for option, path in (("--class-names", args.class_names), ("--data", Path(args.data))):
        if path is not None and not path.expanduser().exists():
            return _fail(f"{option} {path}: no such file or folder.", EXIT_USAGE)
    from deepshap.jobs.api import explain_dataset
    from deepshap.jobs.images import to_channels_first
    from deepshap.jobs.store import JobMismatchError

    options = {
        name: value
        for name, value in (
            ("nsamples", args.nsamples),
            ("max_evals", args.max_evals),
            ("masker", args.masker),
        )
        if value is not None
    }
    outputs = None if args.outputs == "all" else _positive(args, "--outputs", args.outputs)
    background: int | Path = int(args.background) if args.background.isdigit() else Path(args.background)
    names = None
    if args.class_names is not None:
        names = [line.strip() for line in args.class_names.read_text().splitlines() if line.strip()]
    if ":" in args.model:
        sys.path.insert(0, str(Path.cwd()))  # an entry point in the current folder, as `python -m` finds it
    if args.engine == "local" and (args.actors is not None or args.threads_per_actor is not None):
        print(
            "deepshap explain: warning: --actors and --threads-per-actor apply to --engine ray only; "
            "ignored.",
            file=sys.stderr,
        )
        args.actors = args.threads_per_actor = None
    try:
        result = explain_dataset(
            args.model,
            args.data,
            args.out,
            args.explainer,
            background=background,
            outputs=outputs,
            batch_size=args.batch_size,
            explainer_options=options,
            output_names=names,
            preprocess=to_channels_first if args.channels_first else None,
            image_size=args.image_size,
            resize=args.resize,
            crop=args.crop,
            grayscale=args.grayscale,
            dtype=args.dtype,
            seed=args.seed,
            engine=args.engine,
            address=args.address,
            actors=args.actors,
            threads_per_actor=args.threads_per_actor,
            overwrite=args.overwrite,
            quiet=args.quiet,
        )
    except JobMismatchError as exc:  # not a usage mistake: the usage lines would hide the message
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        print(
            f"deepshap explain: interrupted; the chunks finished so far are saved in {args.out}. "
            "Rerun the same command to resume.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, OSError, RuntimeError, ImportError, KeyError) as exc:
        return _fail(str(exc))
    print(
        f"{result.n_images} images: {result.n_images - result.n_errors} explained, {result.n_errors} "
        f"failed ({result.n_explained_now} done in this run) in {result.out}; index: {result.index}"
    )
    if args.report > 0:
        from deepshap.jobs.report import write_report

        page = write_report(result.out, n_images=args.report)
        print(f"Report: {page.resolve()}")
    return 0


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    """One line on stderr (a traceback helps no user of the command line); returns the exit status."""
    print(f"deepshap explain: error: {message}", file=sys.stderr)
    return status


def _size(value: str) -> tuple[int, int]:
    width, sep, height = value.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or int(width) < 1 or int(height) < 1:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 224x224; got {value!r}")
    return int(width), int(height)


def _positive(args: argparse.Namespace, name: str, value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        args.error(f"{name}: expected a positive number or 'all'; got {value!r}.")
    return int(value)
