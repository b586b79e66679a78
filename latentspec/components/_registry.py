"""Registries of components. Torch-free: a component declares its parameters here and
imports torch only inside the methods that build or run it.

One registry per component kind; the JSON Schema, the docs table and the CLI help are all
generated from these declarations (see ``latentspec.spec._schema``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any, ClassVar


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# JSON Schema fragments for the parameter types a component may declare.
_TYPE_SCHEMAS: dict[str, dict] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "str": {"type": "string"},
    "ints": {"type": "array", "items": {"type": "integer"}},
    "floats": {"type": "array", "items": {"type": "number"}},
    "strs": {"type": "array", "items": {"type": "string"}},
    "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
    "range": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
    "tensor": {"type": "string"},
    "tensors": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
    "mapping": {"type": "object"},
    "any": {},
}


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a component: the YAML key, its type, default and meaning."""

    name: str
    type: str
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    schema: dict | None = None  # an explicit JSON Schema fragment, for unusual shapes
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.schema is None and self.type not in _TYPE_SCHEMAS:
            raise ValueError(f"parameter {self.name!r}: unknown type {self.type!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def json_schema(self) -> dict:
        s = dict(self.schema if self.schema is not None else _TYPE_SCHEMAS[self.type])
        if self.choices is not None:
            s["enum"] = list(self.choices)
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        if self.doc:
            s["description"] = self.doc
        if not self.required and self.default is not None:
            s["default"] = self.default
        if self.nullable or (not self.required and self.default is None):
            s = {"anyOf": [s, {"type": "null"}], **({"description": self.doc} if self.doc else {})}
        return s


class Component:
    """Base of every registered component. Subclasses set ``params`` and a docstring whose
    first line is the one-line summary used in the docs table and the CLI help."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    @classmethod
    def summary(cls) -> str:
        doc = inspect.getdoc(cls) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @classmethod
    def param(cls, name: str) -> Param:
        for p in cls.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @classmethod
    def resolve(cls, cfg: dict) -> dict:
        """Parameters with defaults filled in (cfg is already schema-valid)."""
        out = {}
        for p in cls.params:
            out[p.name] = cfg[p.name] if p.name in cfg else (None if p.required else p.default)
        return out


class Registry:
    """Named components of one kind. ``register`` is a class decorator."""

    def __init__(self, kind: str, key: str, doc: str) -> None:
        self.kind = kind  # e.g. "module"
        self.key = key  # the YAML discriminator key, e.g. "module"
        self.doc = doc
        self._entries: dict[str, type[Component]] = {}

    def register(self, name: str) -> Callable[[type[Component]], type[Component]]:
        def deco(cls: type[Component]) -> type[Component]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            names = [p.name for p in cls.params]
            if len(set(names)) != len(names):
                raise ValueError(f"{self.kind} {name!r}: duplicate parameter names")
            cls.name = name
            cls.kind = self.kind
            self._entries[name] = cls
            return cls

        return deco

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> type[Component]:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, type[Component]]]:
        return sorted(self._entries.items())

    def docs_table(self) -> str:
        """A Markdown table of the entries and their parameters."""
        rows = [f"| {self.key} | parameters | what it does |", "|---|---|---|"]
        for name, cls in self.items():
            ps = ", ".join(f"`{p.name}`" + ("" if p.required else f"={p.default!r}") for p in cls.params)
            rows.append(f"| `{name}` | {ps or '—'} | {cls.summary()} |")
        return "\n".join(rows)
