"""A safe YAML loader that remembers where every key and value came from."""

from __future__ import annotations

import dataclasses
import math
import re

import yaml

from latentspec.spec._diagnostics import Diagnostic, SpecError, json_path

MAX_BYTES = 1 << 20  # 1 MiB
MAX_DEPTH = 64
MAX_NODES = 100_000  # bounds alias expansion ("billion laughs")

_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null")}


@dataclasses.dataclass
class Document:
    """A loaded spec: plain Python data plus the position of every key and value."""

    data: object
    file: str
    text: str
    key_pos: dict[tuple, tuple[int, int]]  # path -> (line, col) of the key
    value_pos: dict[tuple, tuple[int, int]]  # path -> (line, col) of the value
    overrides: dict[tuple, str] = dataclasses.field(default_factory=dict)  # path -> "--set KEY" that set it

    def pos(self, path: tuple, key: bool = False) -> tuple[int, int]:
        """The position of ``path``'s key (or value); falls back to the nearest ancestor."""
        path = tuple(path)
        while True:
            table = self.key_pos if key else self.value_pos
            if path in table:
                return table[path]
            if path in self.value_pos:
                return self.value_pos[path]
            if not path:
                return (1, 1)
            path = path[:-1]

    def diag(self, path: tuple, message: str, severity: str = "error", key: bool = False) -> Diagnostic:
        for i in range(len(path), 0, -1):  # a value given on the command line is located there
            if tuple(path[:i]) in self.overrides:
                return Diagnostic(0, 0, severity, json_path(path), message, file=self.overrides[tuple(path[:i])])
        line, col = self.pos(path, key=key)
        return Diagnostic(line, col, severity, json_path(path), message, file=self.file)


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema floats: ``5e-4``, ``1E3`` and ``.5`` are
    numbers (YAML 1.1, PyYAML's default, reads the first two as strings)."""


SpecLoader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
SpecLoader.add_implicit_resolver(
    _T + "float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+.0123456789"),
)


def parse_value(text: str, where: str, path: tuple = ()) -> object:
    """One YAML value as a spec file reads it (for ``--set``): YAML 1.2 floats, plain data
    only, bounded nesting, finite numbers. Problems are SpecErrors located at ``where``."""
    try:
        node = yaml.compose(text, Loader=SpecLoader)
    except yaml.YAMLError as exc:
        d = _yaml_error(where, exc)
        raise SpecError([Diagnostic(0, 0, "error", json_path(path), d.message, where)]) from None
    if node is None:
        return None
    b = _Builder(where)
    try:
        value = b.build(node, tuple(path), 0)
    except _Abort as a:
        raise SpecError([Diagnostic(0, 0, "error", json_path(a.path), a.msg, where)]) from None
    if b.errors:
        raise SpecError([dataclasses.replace(d, line=0, col=0) for d in b.errors])
    return value


_SCALARS = SpecLoader("")  # used only to convert scalar nodes (tags checked first)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.key_pos: dict[tuple, tuple[int, int]] = {}
        self.value_pos: dict[tuple, tuple[int, int]] = {}
        self.count = 0
        self.errors: list[Diagnostic] = []

    def _err(self, node: yaml.Node, path: tuple, msg: str) -> None:
        m = node.start_mark
        self.errors.append(Diagnostic(m.line + 1, m.column + 1, "error", json_path(path), msg, self.file))

    def build(self, node: yaml.Node, path: tuple, depth: int) -> object:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Abort(node, path, f"the document expands to more than {MAX_NODES} nodes (alias bomb?)")
        if depth > MAX_DEPTH:
            raise _Abort(node, path, f"nesting deeper than {MAX_DEPTH} levels")
        m = node.start_mark
        self.value_pos.setdefault(path, (m.line + 1, m.column + 1))
        if isinstance(node, yaml.ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                self._err(node, path, f"tag {node.tag!r} is not allowed in a spec (only plain YAML data)")
                return None
            value = _SCALARS.construct_object(node)
            if isinstance(value, float) and not math.isfinite(value):
                self._err(node, path, f"{node.value!r} is not a finite number; specs take finite numbers only")
                return None
            return value
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _T + "seq":
                self._err(node, path, f"tag {node.tag!r} is not allowed in a spec (only plain YAML data)")
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != _T + "map":
                self._err(node, path, f"tag {node.tag!r} is not allowed in a spec (only plain YAML data)")
            out: dict = {}
            for knode, vnode in self._pairs(node, path):
                if not isinstance(knode, yaml.ScalarNode):
                    self._err(knode, path, "a mapping key must be a plain scalar")
                    continue
                key = self.build(knode, path + ("<key>",), depth + 1)
                if not isinstance(key, str):
                    key = str(key).lower() if isinstance(key, bool) else str(key)
                km = knode.start_mark
                if key in out:
                    first = self.key_pos[path + (key,)]
                    self._err(knode, path + (key,), f"duplicate key '{key}' (first defined at line {first[0]})")
                    continue
                self.key_pos[path + (key,)] = (km.line + 1, km.column + 1)
                out[key] = self.build(vnode, path + (key,), depth + 1)
            self.value_pos.pop(path + ("<key>",), None)
            return out
        raise _Abort(node, path, f"unsupported YAML node {type(node).__name__}")

    def _pairs(self, node: yaml.MappingNode, path: tuple):
        """Key/value pairs with ``<<`` merge keys expanded (explicit keys win)."""
        merged, own = [], []
        for knode, vnode in node.value:
            if knode.tag == _T + "merge":
                sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        self._err(src, path, "'<<' merges only mappings")
                        continue
                    merged.extend(self._pairs(src, path))
            else:
                own.append((knode, vnode))
        own_keys = {k.value for k, _ in own if isinstance(k, yaml.ScalarNode)}
        return [(k, v) for k, v in merged if k.value not in own_keys] + own


class _Abort(Exception):
    def __init__(self, node: yaml.Node, path: tuple, msg: str) -> None:
        self.node, self.path, self.msg = node, path, msg


def _yaml_error(file: str, exc: yaml.YAMLError) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    msg = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
    if "'\\t'" in msg or "\\t" in repr(problem):
        msg += "; indent with spaces, not tabs"
    return Diagnostic(line, col, "error", "$", msg, file)


def load_text(text: str, file: str = "<spec>") -> Document:
    """Parse spec text. Raises :class:`SpecError` for anything that is not a safe YAML mapping."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError([Diagnostic(1, 1, "error", "$", f"spec is larger than {MAX_BYTES} bytes", file)])
    if not text.strip():
        raise SpecError(
            [
                Diagnostic(
                    1, 1, "error", "$", "the spec is empty; it must be a mapping starting with 'latentspec: 1'", file
                )
            ]
        )
    try:
        docs = list(yaml.compose_all(text, Loader=SpecLoader))
    except yaml.YAMLError as exc:
        raise SpecError([_yaml_error(file, exc)]) from None
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        msg = "the spec is empty" if not docs else f"a spec is one YAML document, found {len(docs)}"
        raise SpecError([Diagnostic(1, 1, "error", "$", msg, file)])
    b = _Builder(file)
    try:
        data = b.build(docs[0], (), 0)
    except _Abort as a:
        m = a.node.start_mark
        raise SpecError([Diagnostic(m.line + 1, m.column + 1, "error", json_path(a.path), a.msg, file)]) from None
    if b.errors:
        raise SpecError(b.errors)
    if not isinstance(data, dict):
        raise SpecError([Diagnostic(1, 1, "error", "$", f"a spec must be a mapping, not {type(data).__name__}", file)])
    return Document(data, file, text, b.key_pos, b.value_pos)


def load_file(path: str) -> Document:
    """Read and parse a spec file; unreadable or non-text files are SpecErrors at 1:1."""
    import os

    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise SpecError([Diagnostic(1, 1, "error", "$", f"spec is larger than {MAX_BYTES} bytes ({size})", path)])
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read spec {path!r}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([Diagnostic(line, col, "error", "$", "not a UTF-8 text file (binary data?)", path)]) from None
    if "\x00" in text:
        i = text.index("\x00")
        line = text.count("\n", 0, i) + 1
        raise SpecError(
            [Diagnostic(line, i - text.rfind("\n", 0, i), "error", "$", "not a text file: contains NUL bytes", path)]
        )
    return load_text(text, path)
