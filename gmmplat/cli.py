"""The ``gmmplat`` command line: one module per verb in ``gmmplat.commands``.

Each verb module defines ``add_arguments(parser)`` and ``run(args) -> int``; its one-line
help is its entry in :data:`VERBS`.  Every verb takes ``--plugin FILE.py|MODULE`` (repeatable): the
module is imported before the verb runs, so steps it registers are known.  Only the invoked verb's module is imported, so
``gmmplat --help`` is instant and one verb's dependencies never break another.

Exit codes: 0 success; 2 bad input or options (:class:`GmmplatError`, an unusable
output path, an argument error), printed as ONE line ``gmmplat VERB: error: ...``;
130 interrupted (Ctrl-C); 3 an internal error: one line on the terminal, the
traceback in ``error.log`` of the output (or run) folder.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import sys
import tempfile
import traceback
from pathlib import Path

from .errors import GmmplatError

#: the verbs and their one-line help: the one place it is written (``gmmplat --help`` lists it
#: without importing any verb module; ``gmmplat VERB --help`` shows it as the description)
VERBS = {
    "simulate": "Simulate a synthetic particle dataset with a known motion (hinge, bend, coupled, all; or the large tetramer).",
    "build": "Build the neutral GMM from a consensus map and/or an atomic model, refine it against the map.",
    "check": "Check particles against a map or model: origin sign, x/y, rotation, polarity, CTF, row order.",
    "train": "Train an encoder and decoders on particles (rounds from --config JSON or a --preset; --resume, DDP).",
    "refine": "Refine a trained run's latent points by the likelihood of each image under decoded states (no training).",
    "analyze": "Analyse a trained run: latent PCA, trajectories, maps and morphed models per frame, scores, ChimeraX.",
    "morph": "Morph an atomic model along a latent PC trajectory or to given latent points.",
    "evaluate": "Score a run's latent space against ground truth (Spearman, kNN R², neighbours, Cα RMSD).",
    "select": "Write the particles of a latent-space selection (state, PC range, ellipse, indices) as STAR or .cs.",
    "demo": "Simulate the sample data if needed and run the notebook series headless (the end-to-end demo).",
}

# a value that starts with a minus sign but is a number or a list of numbers ("-0.07,-0.7; 1e-3")
_NEGATIVE_VALUE = re.compile(r"^-\.?\d[0-9eE.,;:+\-\s]*$")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``gmmplat VERB: error: MESSAGE`` and exit code 2."""

    verb_prog: str | None = None  # "gmmplat VERB" on the top parser: its errors name the verb too

    def error(self, message):  # noqa: D401 (argparse API)
        self.exit(2, f"{self.verb_prog or self.prog}: error: {' '.join(str(message).split())}\n")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="gmmplat", description="Cryo-EM heterogeneity analysis with deep GMMs.")
    parser.verb_prog = f"gmmplat {verb}" if verb else None
    sub = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND", parser_class=_Parser)
    for name, help_text in VERBS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--plugin", action="append", default=[], metavar="FILE.py|MODULE",
                       help="import a file or module that registers new steps (e.g. a decoder); repeatable")
        if name == verb:
            module = importlib.import_module(f"gmmplat.commands.{name}")
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def join_negative_values(argv: list[str]) -> list[str]:
    """``--z -0.1,0.2`` -> ``--z=-0.1,0.2``: a negative number after an option is its value.

    (argparse takes any word starting with ``-`` that is not a plain number for an option.)
    """
    out: list[str] = []
    for a in argv:
        prev = out[-1] if out else ""
        if (_NEGATIVE_VALUE.match(a) and prev.startswith("--") and "=" not in prev and len(prev) > 2):
            out[-1] = f"{prev}={a}"
        else:
            out.append(a)
    return out


def _log_folder(args: argparse.Namespace) -> Path | None:
    """The output (else run) folder of a verb, where ``error.log`` goes; None if unknown or absent."""
    for name in ("out", "run"):
        value = getattr(args, name, None)
        if not value:
            continue
        p = Path(value)
        folder = p if p.is_dir() or not p.suffix else p.parent
        if folder.is_dir() and os.access(folder, os.W_OK):
            return folder
    return None


def _write_error_log(args: argparse.Namespace, argv: list[str]) -> Path | None:
    """The traceback of the exception being handled, in ``error.log`` of the output (or run)
    folder, else ``gmmplat-error.log`` in the temporary folder or the working folder."""
    text = "gmmplat " + shlex.join(argv) + "\n\n" + traceback.format_exc()
    folder = _log_folder(args)
    candidates = ([folder / "error.log"] if folder else []) + [
        Path(tempfile.gettempdir()) / "gmmplat-error.log", Path.cwd() / "gmmplat-error.log"]
    for path in candidates:
        try:
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


def resume_command(argv: list[str]) -> str:
    """The command line that continues an interrupted run (``--resume`` added once, ``--overwrite`` dropped:
    the run to continue is the new one)."""
    words = [a for a in argv if a not in ("--resume", "--overwrite")] + ["--resume"]
    return "gmmplat " + shlex.join(words)


def main(argv: list[str] | None = None) -> int:
    argv = join_negative_values(sys.argv[1:] if argv is None else [str(a) for a in argv])
    verb = next((a for a in argv if a in VERBS), None)
    try:
        args = build_parser(verb).parse_args(argv)
    except SystemExit as exc:  # --help (0) or a one-line argument error (2)
        return int(exc.code or 0)
    try:
        if args.plugin:
            from .plugins import import_plugins

            import_plugins(args.plugin)
        return int(args._run(args) or 0)
    except GmmplatError as exc:
        print(f"gmmplat {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = getattr(args, "out", None)
        if hasattr(args, "resume") and out and (Path(out) / "checkpoint.pt").is_file():
            print(f"gmmplat {args.verb}: interrupted; continue with: {resume_command(argv)}", file=sys.stderr)
        elif hasattr(args, "resume") and out:  # nothing to resume yet: the same command starts again
            print(f"gmmplat {args.verb}: interrupted before the first checkpoint; start again with: gmmplat "
                  f"{shlex.join(a for a in argv if a != '--resume')}", file=sys.stderr)
        else:
            print(f"gmmplat {args.verb}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.filename is None:
            return _internal_error(args, argv, exc)
        # a path the user chose cannot be read or written (permissions, a file where a folder
        # should be, a full disk): the user's to fix, not a bug
        print(f"gmmplat {args.verb}: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 (everything a check missed)
        return _internal_error(args, argv, exc)


def _internal_error(args, argv, exc) -> int:
    log = _write_error_log(args, argv)
    msg = " ".join(f"{type(exc).__name__}: {exc}".split())
    where = f"full traceback in {log}" if log else "no folder was writable for error.log"
    print(f"gmmplat {args.verb}: internal error: {msg} (please report; {where})", file=sys.stderr)
    return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
