"""The ``gmmplat`` command line: one module per verb in ``gmmplat.commands``.

Each verb module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``.  Every verb takes ``--plugin FILE.py|MODULE`` (repeatable): the
module is imported before the verb runs, so steps it registers are known.  Only the invoked verb's module is imported, so
``gmmplat --help`` is instant and one verb's dependencies never break another.
Errors raised on purpose (:class:`GmmplatError`) are printed as one line and
give exit code 2; no traceback reaches the user.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import GmmplatError

VERBS = {
    "simulate": "Simulate the synthetic sample datasets (particles, STAR, map, model, truth).",
    "build": "Build and refine a neutral GMM from an atomic model and/or a consensus map.",
    "check": "Check particles against a map or model: origin sign, x/y, rotation, polarity, CTF, row order.",
    "train": "Train encoder and decoders on particles (rounds, checkpoints, --resume, DDP).",
    "analyze": "Latent PCA trajectories, maps and morphed models from a training run.",
    "morph": "Morph the fitted atomic model to latent points or along a PC.",
    "evaluate": "Score a run's latent space against a synthetic dataset's ground truth.",
    "select": "Write the particles of a latent-space selection as STAR or .cs, for re-refinement.",
}


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gmmplat", description="Cryo-EM heterogeneity analysis with deep GMMs.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    for name, help_text in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--plugin", action="append", default=[], metavar="FILE.py|MODULE",
                       help="import a file or module that registers new steps (e.g. a decoder); repeatable")
        if name == verb:
            module = importlib.import_module(f"gmmplat.commands.{name}")
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    verb = next((a for a in argv if a in VERBS), None)
    args = build_parser(verb).parse_args(argv)
    try:
        if args.plugin:
            from .plugins import import_plugins

            import_plugins(args.plugin)
        return int(args._run(args) or 0)
    except GmmplatError as exc:
        print(f"gmmplat {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gmmplat {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
