"""Settings declared once: a dataclass field carries its type, default, bounds and one-line doc.

A ``Literal`` type names the allowed values; ``setting(default, doc, Range(...))`` attaches the
doc and the bounds. Everything else reads these declarations: ``coerce`` (a ``--set`` or YAML
value to the field's type), ``check`` (the one-line messages of bad values) and ``add_flags``
(command-line flags with their help). Cross-field rules stay with the dataclass that has them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field
from typing import Literal

import yaml

from data.errors import BadInput


@dataclass(frozen=True)
class Range:
    """Allowed numbers: from ``low`` (excluded when ``open_low``) up to ``high`` (excluded)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.open_low else value >= self.low)
        return above and (self.high is None or value < self.high)

    def describe(self) -> str:
        if self.high is not None:
            return f"a value in {'(' if self.open_low else '['}{self.low:g}, {self.high:g})"
        if self.open_low:
            return "a positive number" if self.low == 0 else f"more than {self.low:g}"
        return "zero or more" if self.low == 0 else f"{self.low:g} or more"


POSITIVE = Range(0, open_low=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
PROBABILITY = Range(0, 1)  # [0, 1)


def setting(default, doc: str, bounds: Range | None = None):
    """A dataclass field with its one-line doc and, for numbers, its allowed range."""
    return field(default=default, metadata={"doc": doc, "bounds": bounds})


def doc(f: dataclasses.Field) -> str:
    return f.metadata.get("doc", "")


@functools.cache
def types(cls: type) -> dict[str, object]:
    """Field name -> its resolved type (annotations are strings under postponed evaluation)."""
    return typing.get_type_hints(cls)


def choices(kind: object) -> tuple | None:
    """The allowed values of a ``Literal`` type, else None."""
    return typing.get_args(kind) if typing.get_origin(kind) is Literal else None


def base_type(kind: object) -> type:
    allowed = choices(kind)
    return type(allowed[0]) if allowed else kind  # type: ignore[return-value]


def coerce(cls: type, name: str, value: object, key: str, where: str) -> object:
    """``value`` as field ``name`` of ``cls`` holds it; a string is read as YAML first."""
    kind = base_type(types(cls)[name])
    if isinstance(value, str) and kind in (int, float):
        # Python's own reading first: YAML 1.1 takes "3e-4" for a string.
        with contextlib.suppress(ValueError):
            value = kind(value)
    if isinstance(value, str) and kind is not str:
        with contextlib.suppress(yaml.YAMLError):  # not YAML: keep the string, fail below
            value = yaml.safe_load(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadInput(f"{where}: {key} must be {kind.__name__}, got {value!r}; fix the value")
    return value


def check(instance, prefix: str = "", flag: bool = False) -> None:
    """Each field of a dataclass instance within its Literal values and its Range. Messages name
    the key as ``prefix + name`` (``model.hidden``), or as a ``--flag`` when ``flag``."""
    for f in dataclasses.fields(instance):
        value, key = getattr(instance, f.name), prefix + f.name
        shown = "--" + f.name.replace("_", "-") if flag else key
        kind = base_type(types(type(instance))[f.name])
        wrong = not isinstance(value, kind) or kind in (int, float) and isinstance(value, bool)
        if wrong and not (kind is float and type(value) is int):
            raise BadInput(f"{shown} is {value!r}: use a value of type {kind.__name__}")
        allowed = choices(types(type(instance))[f.name])
        if allowed is not None and value not in allowed:
            raise BadInput(f"{shown} is {value!r}: use one of {', '.join(map(str, allowed))}")
        bounds = f.metadata.get("bounds")
        if bounds is not None and not bounds.holds(value):
            raise BadInput(f"{shown} is {value!r}: use {bounds.describe()}")


def add_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--kebab-name`` flag a field of ``cls``, its help from the field's doc and default.
    A flag left out is absent from the parsed namespace (``argparse.SUPPRESS``), so callers
    know what the user gave."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        kind = types(cls)[f.name]
        allowed, default = choices(kind), f.default
        name = "--" + f.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(name, action="store_true", default=argparse.SUPPRESS, help=doc(f))
            continue
        shown = f"{default:g}" if isinstance(default, float) else default
        parser.add_argument(
            name,
            type=flag_type(base_type(kind), f.metadata.get("bounds")),
            choices=allowed,
            metavar="{" + ",".join(map(str, allowed)) + "}" if allowed else None,
            default=argparse.SUPPRESS,
            help=f"{doc(f)} (default {shown})" if shown != "" else doc(f),
        )


def flag_type(kind: type, bounds: Range | None):
    """An argparse type: ``kind`` parsed, then held to ``bounds`` (argparse names the flag)."""
    if kind is str:
        return str

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            name = "whole number" if kind is int else "number"
            raise argparse.ArgumentTypeError(f"{text!r} is not a {name}") from None
        if bounds is not None and not bounds.holds(value):
            raise argparse.ArgumentTypeError(f"{text} is not {bounds.describe()}")
        return value

    return parse
