"""Registries of components. Torch-free: a component declares its parameters here and
imports torch only inside the methods that build or run it.

One registry per component kind; the JSON Schema, the docs table and the CLI help are all
generated from these declarations (see ``latentspec.spec._schema``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import keyword
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


class _Optional:
    def __repr__(self) -> str:
        return "OPTIONAL"


REQUIRED: Any = _Required()
#: The default of an optional key without a default value: absent means None (and, unlike a
#: ``None`` default, an explicit ``null`` is not accepted).
OPTIONAL: Any = _Optional()

#: The largest value of an integer parameter without its own maximum (a 32-bit count).
MAX_INT = 2**31 - 1
#: The largest size of one tensor axis a spec may declare (features, channels, widths).
MAX_DIM = 1 << 20
#: The largest kernel, stride or padding of a convolution.
MAX_KERNEL = 1 << 10
#: Seeds are unsigned 64-bit integers.
MAX_SEED = 2**64 - 1

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
    exclusive_minimum: float | None = None  # a strict lower bound (learning rates, lengths)
    schema: dict | None = None  # an explicit JSON Schema fragment, for unusual shapes
    nullable: bool = False
    default_doc: str | None = None  # a default computed from other values, as the docs show it

    def __post_init__(self) -> None:
        if self.schema is None and self.type not in _TYPE_SCHEMAS:
            raise ValueError(f"parameter {self.name!r}: unknown type {self.type!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def value(self) -> Any:
        """The value an absent key takes: the default (None when required or OPTIONAL)."""
        return None if self.default is REQUIRED or self.default is OPTIONAL else self.default

    def json_schema(self) -> dict:
        s = dict(self.schema if self.schema is not None else _TYPE_SCHEMAS[self.type])
        if self.choices is not None:
            s["enum"] = list(self.choices)
        bounds = {}
        if self.minimum is not None:
            bounds["minimum"] = self.minimum
        if self.maximum is not None:
            bounds["maximum"] = self.maximum
        elif self.type in ("int", "ints", "shape") and self.schema is None:
            bounds["maximum"] = MAX_INT  # every integer is bounded; sizes also by the cost estimate
        if self.exclusive_minimum is not None:
            bounds["exclusiveMinimum"] = self.exclusive_minimum
        if self.type in ("ints", "floats", "shape") and self.schema is None:
            s["items"] = {**s["items"], **bounds}  # a list's bounds are its items' bounds
        else:
            s.update(bounds)
        if self.doc:
            s["description"] = self.doc
        if self.value is not None:
            s["default"] = self.value
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
        # the first paragraph, whole: a summary cut at a line break can end mid-formula
        doc = (inspect.getdoc(cls) or "").strip()
        return " ".join(line.strip() for line in doc.split("\n\n")[0].splitlines())

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
            out[p.name] = cfg[p.name] if p.name in cfg else p.value
        return out

    @classmethod
    def config_type(cls) -> type[Config]:
        """The frozen, keyword-only dataclass of this component's parameters (generated once)."""
        made = _CONFIG_TYPES.get(cls)
        if made is None:
            fields = [(_attr(p.name), Any) for p in cls.params]
            made = dataclasses.make_dataclass(
                f"{cls.__name__}Config", fields, bases=(Config,), frozen=True, kw_only=True
            )
            made.__doc__ = f"The resolved parameters of {cls.kind or 'component'} {cls.name!r}."
            _CONFIG_TYPES[cls] = made
        return made

    @classmethod
    def configure(cls, cfg: Mapping[str, Any]) -> Config:
        """The typed config of ``cfg`` (schema-valid YAML values), defaults filled in."""
        return cls.config_type()(**{_attr(k): freeze(v) for k, v in cls.resolve(dict(cfg)).items()})


_CONFIG_TYPES: dict[type, type] = {}


def _attr(key: str) -> str:
    """The attribute of a YAML key (``lambda`` -> ``lambda_``: keywords cannot be fields)."""
    return f"{key}_" if keyword.iskeyword(key) else key


def freeze(value: Any) -> Any:
    """Lists as tuples and mappings as read-only views, all the way down."""
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: freeze(v) for k, v in value.items()})
    return value


def thaw(value: Any) -> Any:
    """The plain (JSON-ready) form of a frozen value: tuples as lists, mappings as dicts."""
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    return value


class Config(Mapping):
    """Base of the generated config classes: a component's parameters, resolved and frozen.

    Read them as attributes (``cfg.lr``); a component's own code may also read them by YAML key
    (``cfg["lambda"]``), since the config is a read-only mapping of its parameters.
    """

    __slots__ = ()

    def _keys(self) -> dict[str, str]:
        return {
            f.name[:-1] if f.name.endswith("_") and keyword.iskeyword(f.name[:-1]) else f.name: f.name
            for f in dataclasses.fields(self)
        }  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        attr = self._keys().get(key)
        if attr is None:
            raise KeyError(key)
        return getattr(self, attr)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(dataclasses.fields(self))  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict keyed by YAML key (lists, dicts), e.g. for JSON."""
        return {k: thaw(self[k]) for k in self}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Choice:
    """One resolved choice of a registered component (an optimizer, schedule, dataset,
    sampler): the component class and its typed config.

    >>> from latentspec.components import SCHEDULES, load_all
    >>> load_all()
    >>> warmup = SCHEDULES.choose("linear", {"steps": 100})
    >>> warmup.name, warmup.config.end, warmup.instance.value(warmup.config, 50, 0.0)
    ('linear', 1.0, 0.5)
    """

    component: type[Component]
    config: Config

    @property
    def name(self) -> str:
        return self.component.name

    @functools.cached_property
    def instance(self) -> Component:
        """The component, instantiated once (components are stateless descriptors)."""
        return self.component()


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

    def choose(self, name: str, cfg: Mapping[str, Any] | None = None) -> Choice:
        """The entry ``name`` with its typed config (``cfg`` already schema-valid)."""
        cls = self._entries[name]
        return Choice(component=cls, config=cls.configure(cfg or {}))

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
            ps = ", ".join(
                f"`{p.name}`" + ("" if p.required else f"={p.default_doc or repr(p.default)}") for p in cls.params
            )
            rows.append(f"| `{name}` | {ps or '—'} | {cls.summary()} |")
        return "\n".join(rows)
