"""`latentspec compile`: a summary table, the fx code, or the tensor graph as DOT/Mermaid."""

from __future__ import annotations

import shutil
import subprocess

from latentspec.errors import UserError
from latentspec.graph import Latent
from latentspec.spec import Spec


def _shape(spec: Spec, t: str) -> str:
    info = spec.infos.get(t)
    if info is None or info.shape is None:
        return "?"
    return "[B" + "".join(f", {d}" for d in info.shape) + "]" + ("" if info.dtype == "float32" else f" {info.dtype}")


def summary(spec: Spec, model) -> str:
    rows = [("node", "kind", "in", "out", "params")]
    total = 0
    for name, lat in spec.latents.items():
        if lat.table:
            # without data (`latentspec compile`) a table's size is unknown: it has one code per training row
            if model.table_sizes.get(name) is None:
                count = f"{lat.dim:,} per training row"
            else:
                n = sum(p.numel() for p in model.module_of(name).parameters())
                total += n
                count = f"{n:,}"
            rows.append((name, "latent_table", lat.index or "", f"{name} {_shape(spec, name)}", count))
    for name, n in spec.nodes.items():
        count = sum(p.numel() for p in model.module_of(name).parameters()) if n.kind == "module" else 0
        total += count
        kind = f"use {n.owner}" if n.kind == "use" else n.type
        ins = ", ".join(n.inputs) if n.body is None else "loop"
        outs = ", ".join(f"{t} {_shape(spec, t)}" for t in n.outputs)
        rows.append((name, kind, ins, outs, f"{count:,}" if n.kind == "module" else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [f"{spec.name}: {len(spec.nodes)} nodes, {total:,} parameters"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append("fields: " + ", ".join(f"{f} {_shape(spec, f)}" for f in spec.data.fields))
    if spec.export:
        lines.append(
            "entry points: "
            + ", ".join(f"{e.name}({', '.join(e.inputs)}) -> {', '.join(e.outputs)}" for e in spec.export.values())
        )
    return "\n".join(lines)


def graph_text(spec: Spec, fmt: str) -> str:
    """The tensor graph: tensors as ellipses, nodes as boxes, terms as diamonds."""
    edges, nodes = [], []
    for f in spec.data.fields:
        nodes.append((f, f"{f} {_shape(spec, f)}", "field"))
    for name in spec.latents:
        if isinstance(spec.producers.get(name), Latent):
            nodes.append((name, f"{name} {_shape(spec, name)}", "latent"))
    for name, n in spec.nodes.items():
        nodes.append((f"n_{name}", f"{name}: {n.type if n.kind != 'use' else 'use ' + n.owner}", "node"))
        for t in n.reads:
            edges.append((t, f"n_{name}"))
        for t in n.outputs:
            if t not in spec.data.fields and not isinstance(spec.producers.get(t), Latent):
                nodes.append((t, f"{t} {_shape(spec, t)}", "tensor"))
            edges.append((f"n_{name}", t))
    for name, term in spec.objective.items():
        nodes.append((f"t_{name}", f"{name}: {term.term}", "term"))
        edges.extend((t, f"t_{name}") for t in term.inputs)
    seen, uniq = set(), []
    for n in nodes:
        if n[0] not in seen:
            seen.add(n[0])
            uniq.append(n)
    if fmt == "mermaid":
        shape = {
            "field": ("[/", "/]"),
            "latent": ("((", "))"),
            "node": ("[", "]"),
            "tensor": ("(", ")"),
            "term": ("{", "}"),
        }
        lines = (
            ["flowchart TD"]
            + [f'  {i}{shape[k][0]}"{label}"{shape[k][1]}' for i, label, k in uniq]
            + [f"  {a} --> {b}" for a, b in edges]
        )
        return "\n".join(lines)
    style = {
        "field": "shape=parallelogram",
        "latent": "shape=doublecircle",
        "node": "shape=box, style=filled, fillcolor=lightblue",
        "tensor": "shape=ellipse",
        "term": "shape=diamond, style=filled, fillcolor=mistyrose",
    }
    lines = (
        [f'digraph "{spec.name}" {{', "  rankdir=TB;"]
        + [f'  "{i}" [label="{label}", {style[k]}];' for i, label, k in uniq]
        + [f'  "{a}" -> "{b}";' for a, b in edges]
        + ["}"]
    )
    return "\n".join(lines)


def emit(spec: Spec, what: str, fmt: str = "dot", entry: str | None = None, allow_python: bool = False) -> str:
    if what == "graph":
        return graph_text(spec, fmt)
    from latentspec.compiler import compile_spec

    model = compile_spec(spec, allow_python=allow_python)
    if what == "python":
        if entry is not None:
            if entry not in spec.export:
                raise UserError(f"no export entry '{entry}'; the spec has: {', '.join(spec.export) or 'none'}")
            gm, _ = model.entry(entry)
        else:
            gm, _ = model.training_graph
        return gm.code.strip()
    return summary(spec, model)


def render_svg(dot: str, out: str) -> None:
    exe = shutil.which("dot")
    if exe is None:
        raise UserError(
            "rendering SVG needs Graphviz's `dot` (e.g. `apt-get install graphviz`); use `--emit graph --format dot -o graph.dot` without it"
        )
    res = subprocess.run([exe, "-Tsvg", "-o", out], input=dot, text=True, capture_output=True, check=False)
    if res.returncode != 0:
        raise UserError(f"dot failed: {res.stderr.strip()}")
