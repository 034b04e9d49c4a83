"""The ``deepshap`` command line: ``deepshap demo [--out DIR] [--quick]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepshap", description="Shapley-value explanations for deep models."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train a small MNIST CNN, explain it and a pretrained ImageNet model, write an HTML gallery",
    )
    demo.add_argument(
        "--out", type=Path, default=Path("demo-output"), help="output folder (default: %(default)s)"
    )
    demo.add_argument("--quick", action="store_true", help="fewer epochs and model evaluations (a smoke run)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deepshap`` console script and ``python -m deepshap``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    out = args.out.expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--out {out}: cannot create the output folder ({exc.strerror or exc}).")
    import matplotlib

    matplotlib.use("Agg")  # the demo only writes files: never open windows
    from deepshap.demo import run_demo  # imported here: `deepshap --help` must not load torch

    try:
        index = run_demo(out, quick=args.quick)
    except FileExistsError as exc:
        parser.error(f"--out {out}: {exc}")
    print(f"Gallery: {index.resolve()}")
    return 0
