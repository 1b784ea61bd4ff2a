"""Shared by the verbs: numbers with a range, checked by argparse (one-line errors); input-file checks."""
from __future__ import annotations

import argparse
import math
import os


def _number(kind, minimum, strict: bool, text: str, maximum=None):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None
    if isinstance(value, float) and math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if maximum is not None and not minimum <= value <= maximum:
        raise argparse.ArgumentTypeError(f"must lie in {minimum:g}..{maximum:g}, got {text}")
    if (value <= minimum) if strict else (value < minimum):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, got {text}")
    return value


def _bounded(name: str, kind: type, minimum: float, strict: bool, doc: str):
    """An argparse type named ``name`` (argparse shows the name in its messages)."""
    def parse(text: str):
        return _number(kind, minimum, strict, text)

    parse.__name__ = parse.__qualname__ = name
    parse.__doc__ = doc
    return parse


positive_float = _bounded("positive_float", float, 0.0, True, "A float > 0.")
nonnegative_float = _bounded("nonnegative_float", float, 0.0, False, "A float >= 0.")
positive_int = _bounded("positive_int", int, 1, False, "An integer >= 1.")
nonnegative_int = _bounded("nonnegative_int", int, 0, False, "An integer >= 0.")


def finite_float(text: str) -> float:
    """Any finite float."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value




def int_at_least(minimum: int):
    """Argument type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        return _number(int, minimum, False, text)
    return parse


def float_between(minimum: float, maximum: float):
    """Argument type: a float in ``[minimum, maximum]``."""
    def parse(text: str) -> float:
        return _number(float, minimum, False, text, maximum)
    return parse


def existing_file(path, option: str, what: str = "file") -> None:
    """One-line InputError unless ``path`` (given with ``option``) is an existing file."""
    from ..errors import InputError

    if os.path.isdir(path):
        raise InputError(path, f"{option} is a folder; give the {what}")
    if not os.path.exists(path):
        raise InputError(path, "file not found")
    if not os.path.isfile(path):
        raise InputError(path, f"{option} is not a regular file")


#: options several verbs take with the same meaning: their argparse keywords, written once
SHARED_OPTIONS = {
    "--run": dict(required=True, help="run folder written by gmmplat train"),
    "--overwrite": dict(action="store_true", help="replace a non-empty --out (refused otherwise)"),
    "--allow-other-particles": dict(action="store_true",
                                    help="use particles that are not the ones the run was trained on (another "
                                         "file, order or poses; refused otherwise); what differs is printed"),
    "--s-angstrom": dict(type=positive_float, help="width of the GMM→atom transition (default: Gaussian spacing)"),
    "--truth-frames": dict(help="multi-model PDB of the true frames (with --model)"),
    "--invert-contrast": dict(action="store_true", help="particles have dark protein: multiply by -1"),
    "--no-progress": dict(action="store_true", help="no progress bar"),
    "--device": dict(default="cpu", help="cpu, cuda or cuda:N (default cpu)"),
    "--morph-reference": dict(choices=("median", "neutral"), default="median",
                              help="morph the model by the decoded motion from the latent median (default: the "
                                   "fitted model stands for the median particle) or by the offsets from the "
                                   "neutral GMM"),
}


def add_shared_options(parser: argparse.ArgumentParser, *options: str) -> None:
    """Add each named option of :data:`SHARED_OPTIONS` to ``parser``."""
    for option in options:
        parser.add_argument(option, **SHARED_OPTIONS[option])


def other_particles_check(run_dir, table, path, allow: bool) -> None:
    """Refuse the particles (``table`` of file ``path``) unless they are the ones ``run_dir`` was trained
    on, by its recorded ``data_fingerprint``; with ``allow`` print what differs instead."""
    from ..records import check_run_particles

    note = check_run_particles(run_dir, table, path, allow)
    if note:
        print(f"note: {note}", flush=True)


def refuse_existing(paths, overwrite: bool, option: str = "--out") -> None:
    """One-line InputError when an output file already exists and ``--overwrite`` is not given (the rule
    every verb follows: a used output is replaced only on request)."""
    from pathlib import Path

    from ..errors import InputError

    if overwrite:
        return
    for path in paths:
        if Path(path).is_file():
            raise InputError(path, f"{option} exists; pass --overwrite to replace it, or choose another name")
