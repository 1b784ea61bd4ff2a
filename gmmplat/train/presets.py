"""Ready-made run configurations, kept as data: ``gmmplat/train/preset_data/<name>.json``.

``preset(name, neutral, domain=None, epochs=None, ...) -> RunConfig``; ``domain`` is a mask name,
several separated by commas, or a list of names.  Each file holds ``about`` (one line), ``needs``
(``domain``: a mask must be named; ``extras``: what the neutral GMM must hold) and ``config``, a run
configuration (docs/training.md) with a few values that depend on the data:

* ``{"$low_res": A}``: ``A`` Å, or 2 pixels when that is coarser (Nyquist of a coarse sampling);
* ``"$domains"``: the named masks (a list); ``"!$domains"``: every Gaussian outside them;
* ``"$domain_subset"``: the named masks joined by commas, or nothing when none is named (the key
  is left out);
* ``"$if_extra": "bonds"`` in a list entry: the entry is kept only when the GMM holds that extra.

The tuned values and what they were chosen on: docs/benchmarks.md, "Current results" and the
sections it links.  A configuration file may start from a preset and change keys:
``{"preset": "hierarchical", "refine": {"pose_steps": 0}}`` (:func:`merge_overrides`);
``gmmplat train --print-config`` shows the result.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..model.gmm import GMM
from .config import RunConfig

__all__ = ["PRESETS", "preset", "preset_data", "preset_dict", "merge_overrides", "config_file"]

DATA = Path(__file__).with_name("preset_data")
PRESETS: tuple[str, ...] = ("rigid", "hierarchical", "free", "multi")


@lru_cache(maxsize=None)
def _read(name: str) -> str:
    return (DATA / f"{name}.json").read_text()


def preset_data(name: str) -> dict:
    """The file of preset ``name`` as read (a fresh copy): ``about``, ``needs``, ``config``."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return json.loads(_read(name))


def _need_domains(neutral: GMM, domain, name) -> list[str]:
    """Mask names of ``domain``: one name, several separated by commas, or a list of names."""
    known = ", ".join(sorted(neutral.masks())) or "none"
    names = [d.strip() for d in (domain.split(",") if isinstance(domain, str) else (domain or []))]
    names = [d for d in names if d]
    if not names:
        raise ConfigError(f"preset {name!r} needs --domain NAME (masks in the GMM: {known})")
    for d in names:
        if d not in neutral.masks():
            raise ConfigError(f"preset {name!r}: no mask {d!r} in the GMM; known: {known}")
    if len(set(names)) != len(names):
        raise ConfigError(f"preset {name!r}: a mask is named twice in --domain {','.join(names)}")
    return names


_DROP = object()


def _resolve(value: Any, neutral: GMM, domains: list[str]) -> Any:
    """``value`` with the data-dependent tokens (module docstring) replaced."""
    if isinstance(value, dict):
        if set(value) == {"$low_res"}:
            return max(float(value["$low_res"]), 2.0 * float(neutral.pixel_size_angstrom))
        extra = value.get("$if_extra")
        if extra is not None and extra not in neutral.extras:
            return _DROP
        out = {k: _resolve(v, neutral, domains) for k, v in value.items() if k != "$if_extra"}
        return {k: v for k, v in out.items() if v is not _DROP}
    if isinstance(value, list):
        return [v for v in (_resolve(x, neutral, domains) for x in value) if v is not _DROP]
    if value == "$domains":
        return list(domains)
    if value == "!$domains":
        return "!" + ",".join(domains)
    if value == "$domain_subset":
        return ",".join(domains) if domains else _DROP
    return value


def merge_overrides(base: dict, overrides: dict, where: str = "config") -> dict:
    """``base`` with ``overrides`` merged in: objects key by key, lists of objects of the same length
    entry by entry (``rounds``), anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge_overrides(old, value, f"{where}.{key}")
        elif (isinstance(old, list) and isinstance(value, list) and len(old) == len(value)
              and all(isinstance(x, dict) for x in old + value)):
            out[key] = [merge_overrides(a, b, f"{where}.{key}[{i}]") for i, (a, b) in enumerate(zip(old, value))]
        else:
            out[key] = copy.deepcopy(value)
    return out


def preset_dict(name: str, neutral: GMM, domain=None) -> dict:
    """The configuration dict of preset ``name`` for ``neutral`` (before the command line's changes)."""
    data = preset_data(name)
    needs = data.get("needs", {})
    missing = [e for e in needs.get("extras", []) if e not in neutral.extras]
    if missing:
        raise ConfigError(f"preset {name!r} needs a GMM with {' and '.join(missing)} (build it with the small GMM "
                          "option)")
    domains = _need_domains(neutral, domain, name) if needs.get("domain") or domain else []
    return _resolve(data["config"], neutral, domains)


def preset(name: str, neutral: GMM, domain: str | None = None, epochs: int | list | None = None, seed: int = 0,
           latent_dim: int | None = None, batch_size: int | None = None, overrides: dict | None = None) -> RunConfig:
    """A :class:`RunConfig` for preset ``name`` fitted to ``neutral`` (its pixel size, masks, extras),
    with ``overrides`` (a configuration's keys, :func:`merge_overrides`) applied before the options."""
    d = preset_dict(name, neutral, domain)
    if overrides:
        d = merge_overrides(d, overrides)
    d["seed"] = int(seed)
    if latent_dim is not None:
        d["latent_dim"] = int(latent_dim)
    if epochs is not None:
        counts = [int(epochs)] * len(d["rounds"]) if isinstance(epochs, int) else [int(e) for e in epochs]
        if len(counts) != len(d["rounds"]):
            raise ConfigError(f"preset {name!r} has {len(d['rounds'])} round(s) but {len(counts)} epoch counts "
                              "were given")
        for r, e in zip(d["rounds"], counts):
            r["epochs"] = e
    for r in d["rounds"]:
        if batch_size is not None:
            r["batch_size"] = int(batch_size)
    return RunConfig.from_dict(d)


def config_file(path, neutral_of, domain=None) -> RunConfig:
    """The run configuration in JSON file ``path``: a whole configuration (:func:`load_config`), or
    ``{"preset": name, ...keys to change}`` (``neutral_of()`` gives the neutral GMM it is fitted to;
    ``domain`` as for :func:`preset`).  Errors name the file."""
    import os

    from ..errors import InputError
    from .config import load_config

    try:
        with open(path) as fh:
            d = json.load(fh)
    except (OSError, ValueError):
        return load_config(path)  # its errors name the file and the problem
    if not (isinstance(d, dict) and "preset" in d):
        if domain is not None:
            raise ConfigError("--domain goes with --preset (or a configuration file that starts from one); "
                              "with --config set the masks in the JSON")
        return load_config(path)
    overrides = {k: v for k, v in d.items() if k != "preset"}
    try:
        return preset(str(d["preset"]), neutral_of(), domain, seed=int(overrides.pop("seed", 0)), overrides=overrides)
    except ConfigError as exc:
        raise InputError(os.fspath(path), str(exc)) from None
