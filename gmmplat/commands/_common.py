"""Argument types shared by the verbs: numbers with a range, checked by argparse (one-line errors)."""
from __future__ import annotations

import argparse
import math


def _number(kind, minimum, strict: bool, text: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") \
            from None
    if isinstance(value, float) and math.isnan(value):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if (value <= minimum) if strict else (value < minimum):
        raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, got {text}")
    return value


def positive_float(text: str) -> float:
    """A float > 0."""
    return _number(float, 0.0, True, text)


def nonnegative_float(text: str) -> float:
    """A float >= 0."""
    return _number(float, 0.0, False, text)


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _number(int, 1, False, text)


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    return _number(int, 0, False, text)
