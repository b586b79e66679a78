"""The semantic pass on a spec the schema refused: the schema-valid rest, checked anyway.

So that one run reports every problem (a misspelt module *and* an undefined tensor elsewhere),
a named item the schema refused is set aside: a node is neutralised (its declared outputs stay
produced, so nothing downstream reports them undefined), an objective term or export entry is
left out. What remains must pass the schema by itself; otherwise (a broken `data:`, `latents:`,
`train:` or top level) the semantic pass is skipped, as it cannot run on a guess.
"""

from __future__ import annotations

import dataclasses
import re

from latentspec.spec._diagnostics import Diagnostic
from latentspec.spec._yaml import Document

#: top-level maps whose items can be set aside one by one
_ITEMS = ("nodes", "objective", "export")


@dataclasses.dataclass(frozen=True)
class SetAside:
    """What the semantic pass runs without, and the checked document."""

    doc: Document
    nodes: dict[str, tuple[str, ...]]  # neutralised node -> the tensors it declares it produces
    reads: frozenset[str]  # tensors the set-aside items read or output (not dead for them)
    names: frozenset[str]  # every set-aside item's name

    def unrelated(self, d: Diagnostic) -> bool:
        """Is ``d`` about the checked rest, not an echo of something set aside (a stage's
        `trainable` naming a neutralised node, a `use:` of it)?"""
        return not any(re.search(rf"'{re.escape(str(n))}'", d.message) for n in self.names)


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def set_aside(doc: Document, paths: list[tuple]) -> SetAside | None:
    """``doc`` without the items holding the schema errors at ``paths``; None when an error
    lies outside a named node, term or entry."""
    data = doc.data
    if not isinstance(data, dict):
        return None
    drop: dict[str, set[str]] = {k: set() for k in _ITEMS}
    for p in paths:
        if len(p) < 2 or p[0] not in _ITEMS or not isinstance(data.get(p[0]), dict):
            return None
        drop[p[0]].add(p[1])
    kept = dict(data)
    nodes: dict[str, tuple[str, ...]] = {}
    reads: set[str] = set()
    for section, names in drop.items():
        if not names:
            continue
        items = data[section]
        kept[section] = {k: v for k, v in items.items() if k not in names}
        for name in names:
            raw = items.get(name)
            raw = raw if isinstance(raw, dict) else {}
            reads.update(_names(raw.get("in")))
            if section == "nodes":
                outs = _names(raw.get("out")) or [name]
                nodes[name] = tuple(o for o in outs if o)
            elif section == "export":
                reads.update(_names(raw.get("out")))
    pruned = dataclasses.replace(doc, data=kept)
    return SetAside(pruned, nodes, frozenset(reads), frozenset(n for s in drop.values() for n in s))
