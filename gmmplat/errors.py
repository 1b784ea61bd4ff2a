"""Typed errors for bad input.

Every problem with a user's file is raised as :class:`InputError`, whose message
is one line naming the file and the problem.  The command line catches
:class:`GmmplatError`, prints the message and exits with a non-zero code, so a
user never sees a traceback for bad input.
"""
from __future__ import annotations

import os


class GmmplatError(Exception):
    """Base class of every error gmmplat raises on purpose."""


class InputError(GmmplatError):
    """A user-supplied file or value is unusable.

    ``InputError(path, problem)`` renders as ``"<path>: <problem>"``; pass
    ``path=None`` for problems not tied to one file (e.g. a bad option).
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(self.problem if self.path is None else f"{self.path}: {self.problem}")


class ConfigError(GmmplatError):
    """An option or run configuration is inconsistent (not tied to one file)."""
