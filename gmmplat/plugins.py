"""User plugins: Python files or modules that register new steps (decoders, losses, ...).

``gmmplat train --plugin my_decoder.py ...`` (any verb) imports the file before the verb
runs, so its ``@DECODERS.register("name")`` is known to configs and saved runs.
"""
from __future__ import annotations

from pathlib import Path

from .errors import InputError


def import_plugins(specs) -> list:
    """Import modules that register steps (e.g. a new decoder) before a run that uses them is loaded.

    Each spec is a ``.py`` file path or an importable module name; returns the modules.
    A missing file or a failing import is a one-line :class:`InputError`.
    """
    import importlib
    import importlib.util
    import sys

    modules = []
    for spec in specs or []:
        spec = str(spec)
        try:
            if spec.endswith(".py"):
                path = Path(spec)
                if not path.is_file():
                    raise InputError(path, "plugin file not found")
                name = path.stem  # so that a later ``import <stem>`` finds the same module (registers once)
                loaded = sys.modules.get(name)
                if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() == path.resolve():
                    modules.append(loaded)
                    continue
                if loaded is not None:
                    name = f"gmmplat_plugin_{path.stem}"
                    if name in sys.modules:
                        modules.append(sys.modules[name])
                        continue
                module_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                try:
                    module_spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
            else:
                module = importlib.import_module(spec)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(spec, f"plugin import failed ({type(exc).__name__}: {' '.join(str(exc).split())})") from None
        modules.append(module)
    return modules
