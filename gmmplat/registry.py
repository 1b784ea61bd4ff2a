"""Name -> class registries, one per swappable step.

Each step package (``projectors``, ``encoders``, ``decoders``, ``losses``,
``regularizers``) owns one :class:`Registry`; an implementation registers
itself with a decorator::

    PROJECTORS = Registry("projector")

    @PROJECTORS.register("separable")
    class FourierSeparableProjector(Projector): ...

and a config or notebook builds a step by name: ``PROJECTORS.build("separable")``.
Library code never branches on these names.
"""
from __future__ import annotations

from typing import Callable, Dict, Generic, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._classes: Dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        def deco(cls: type) -> type:
            if name in self._classes and self._classes[name] is not cls:
                raise ConfigError(f"{self.kind} {name!r} is registered twice")
            self._classes[name] = cls
            cls.registry_name = name
            return cls

        return deco

    def get(self, name: str) -> type:
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def build(self, name: str, *args, **kwargs):
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: str) -> bool:
        return name in self._classes
