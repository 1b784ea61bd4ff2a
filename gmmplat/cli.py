"""The ``gmmplat`` command line: one module per verb in ``gmmplat.commands``.

Each verb module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``.  Errors raised on purpose (:class:`GmmplatError`) are
printed as one line and give exit code 2; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import GmmplatError

VERBS = ["simulate", "build", "train", "analyze", "morph", "evaluate"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gmmplat", description="Cryo-EM heterogeneity analysis with deep GMMs.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for verb in VERBS:
        module = importlib.import_module(f"gmmplat.commands.{verb}")
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except GmmplatError as exc:
        print(f"gmmplat {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gmmplat {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
