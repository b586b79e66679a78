"""Regenerate the measured sections of benchmarks/BENCHMARKS.md and README.md from the JSON that
the benchmark scripts write to benchmarks/results/ (never edit those sections by hand).

Each generated section sits between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->``
markers; everything outside the markers is left as it is.

    python -m benchmarks.report            # rewrite both files
    python -m benchmarks.report --check    # exit 1 when a file is not what the JSON gives
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
GOAL_RUNTIME = 3.0  # issue 15: the runtime >= 3x eager at batch 1
GOAL_TRAINING = 1.15  # issue 15: compiled >= 1.15x the plain hand-written loop
GOAL_SCALE = 1.25  # issue 15: a latent table's step time flat from N = 1e4 to 1e6 (within 1.25x)


def load(name: str, results: str = RESULTS) -> dict[str, Any] | None:
    path = os.path.join(results, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def provenance(result: dict[str, Any]) -> str:
    """Where, when and how: the machine line every table carries."""
    m = result["machine"]
    load = m.get("load_average_start")
    end = m.get("load_average_end")
    loads = ""
    if load:
        loads = f"; load average {load[0]:.1f} at start" + (f", {end[0]:.1f} at end" if end else "")
    return (
        f"Measured {m['when']} on {m['cpu']} ({m['cores']} cores{loads}), torch {m['torch']}, "
        f"onnxruntime {m['onnxruntime']}{', ' + m['cuda'] if m.get('cuda') else ''}. "
        f"Command: `{result['command'].strip()}`"
        + (" (quick mode: too few calls to quote)" if result.get("quick") else "")
    )


def _us(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def runtime_section(r: dict[str, Any]) -> str:
    lines = [provenance(r), ""]
    has_compiled = any("compiled" in row for row in r["rows"])
    head = "| model | entry | batch | runtime p50 / p99 µs | eager p50 / p99 µs |"
    sep = "|---|---|---:|---:|---:|"
    if has_compiled:
        head += " torch.compile p50 / p99 µs |"
        sep += "---:|"
    head += " runtime items/s | eager ÷ runtime |" + (" compiled ÷ runtime |" if has_compiled else "")
    sep += "---:|---:|" + ("---:|" if has_compiled else "")
    lines += [head, sep]
    for row in r["rows"]:
        cells = [row["model"], row["entry"], str(row["batch"])]
        for k in ("runtime", "eager", *(("compiled",) if has_compiled else ())):
            s = row.get(k)
            cells.append(f"{_us(s['p50_us'])} / {_us(s['p99_us'])}" if s else "—")
        cells.append(f"{row['runtime']['items_per_s']:,.0f}")
        cells.append(f"**{row['eager_over_runtime_p50']:.2f}×**")
        if has_compiled:
            c = row.get("compiled_over_runtime_p50")
            cells.append(f"{c:.2f}×" if c is not None else "—")
        lines.append("| " + " | ".join(cells) + " |")
    ones = [row for row in r["rows"] if row["batch"] == 1]
    if ones:
        worst = min(ones, key=lambda row: row["eager_over_runtime_p50"])
        best = max(ones, key=lambda row: row["eager_over_runtime_p50"])
        lines += [
            "",
            f"Batch 1, eager ÷ runtime p50: {worst['eager_over_runtime_p50']:.2f}× ({worst['model']} "
            f"{worst['entry']}) to {best['eager_over_runtime_p50']:.2f}× ({best['model']} {best['entry']}); "
            f"goal {GOAL_RUNTIME:g}×.",
        ]
    opt = r.get("session_options")
    if opt:
        lines += [
            "",
            f"Session options and call paths, raw onnxruntime session, {opt['model']} {opt['entry']} at batch "
            f"{opt['batch']} (ratio: defaults' p50 ÷ this p50; above 1 is faster):",
            "",
            "| variant | p50 µs | p99 µs | vs defaults |",
            "|---|---:|---:|---:|",
        ]
        for name, s in opt["variants"].items():
            lines.append(f"| {name} | {_us(s['p50_us'])} | {_us(s['p99_us'])} | {s['vs_defaults']:.2f}× |")
        chosen = ", ".join(f"{k}={v}" for k, v in opt["chosen"].items())
        lines += ["", f"The runtime's `SESSION_OPTIONS`: {chosen}."]
    prof = r.get("ort_profile")
    if prof:
        lines += [
            "",
            "onnxruntime's own profile (`enable_profiling`, medians per op) of `decode` at batch 1: the time "
            "inside the graph's kernels against the whole `Bundle.decode` call:",
            "",
            "| model | kernels µs/call | by op | `Bundle.decode` p50 µs | kernels' share |",
            "|---|---:|---|---:|---:|",
        ]
        for row in prof:
            ops = ", ".join(f"{k} {v:.1f}" for k, v in row["kernel_us_by_op"].items())
            share = row["kernel_us_per_call"] / row["bundle_decode_p50_us"]
            lines.append(
                f"| {row['model']} | {row['kernel_us_per_call']:.1f} | {ops} | {row['bundle_decode_p50_us']:.1f} "
                f"| {share:.0%} |"
            )
    lines += runtime_explanation(r)
    return "\n".join(lines)


def runtime_explanation(r: dict[str, Any]) -> list[str]:
    """Why a batch-1 ratio is below the goal, in the profile's own numbers."""
    below = [row for row in r["rows"] if row["batch"] == 1 and row["eager_over_runtime_p50"] < GOAL_RUNTIME]
    opt, prof = r.get("session_options"), r.get("ort_profile")
    if not below or not opt or not prof:
        return []
    variants = opt["variants"]
    bound = variants.get("IO binding, preallocated output", {}).get("p50_us")
    decode = next((row for row in r["rows"] if row["batch"] == 1 and row["entry"] == "decode"), None)
    mlp = next((p for p in prof if p["model"] == decode["model"]), None) if decode else None
    if bound is None or decode is None or mlp is None:
        return []
    eager = decode["eager"]["p50_us"]
    ops = ", ".join(f"{k} {v:.0f} µs" for k, v in mlp["kernel_us_by_op"].items())
    names = ", ".join(f"{row['model']} {row['entry']} {row['eager_over_runtime_p50']:.2f}×" for row in below)
    above = ", ".join(
        f"{row['model']} {row['entry']} {row['eager_over_runtime_p50']:.2f}×"
        for row in r["rows"]
        if row["batch"] == 1 and row["eager_over_runtime_p50"] >= GOAL_RUNTIME
    )
    return [
        "",
        f"**Below the {GOAL_RUNTIME:g}× goal at batch 1:** {names}. The profile says why: "
        f"onnxruntime's kernels for {decode['model']} `decode` take {mlp['kernel_us_per_call']:.0f} µs per call "
        f"({ops}), and a bare session with a preallocated IO binding, no wrapper at all, takes "
        f"{bound:.1f} µs against eager's {eager:.1f} µs: even a free wrapper would stop at "
        f"{eager / bound:.2f}×. The {decode['model']} Gemms read their fp32 weights (about 1.25 MB for "
        "the 400×784 layer) once per call: memory-bound work that eager PyTorch does with the same "
        "sgemm, so the runtime wins only eager's Python dispatch. The wrapper itself costs "
        f"{decode['runtime']['p50_us'] - bound:.1f} µs over the bare bound session (checks on a known "
        "signature, input and output copies). Past 3× at batch 1 for the MLP needs smaller weights "
        "(fp16 or int8), which changes the outputs." + (f" At or past the goal at batch 1: {above}." if above else ""),
    ]


def vae_section(r: dict[str, Any]) -> str:
    lines = [provenance(r), ""]
    lines += [
        f"Images/s in {r['blocks']} alternating blocks of {r['steps_per_block']} steps on the same batches "
        f"(torch threads: {r['threads']}); ratio to the plain hand-written loop (goal {GOAL_TRAINING:g}×):",
        "",
        "| model | hand-written (plain Adam) | hand-written, fused Adam | latentspec | latentspec + train.compile |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in r["models"].items():
        ips, ratio = m["interleaved"]["images_per_second"], m["interleaved"]["ratio_vs_hand_written"]
        cells = [name]
        for k in ("hand_written", "hand_written_fused_adam", "latentspec", "latentspec_train_compile"):
            cells.append(f"{ips[k]:,.0f} ({ratio[k]:.2f}×)" if k in ips else "—")
        lines.append("| " + " | ".join(cells) + " |")
    for name, m in r["models"].items():
        warm = m["interleaved"].get("train_compile_warmup_s")
        if warm is not None:
            lines.append(f"\n{name}: `train.compile` first three steps (compilation) {warm:.1f} s.")
    for name, m in r["models"].items():
        whole = m.get("whole_runs")
        if whole:
            lines += [
                "",
                f"{name}, whole {whole['epochs']}-epoch runs: test −ELBO hand-written "
                f"{whole['hand_written']['neg_elbo']:.2f}, latentspec {whole['latentspec']['neg_elbo']:.2f} nats; "
                f"images/s {whole['hand_written']['images_per_second']:,.0f} vs "
                f"{whole['latentspec']['images_per_second']:,.0f}.",
            ]
    lines += vae_explanation(r)
    for name, m in r["models"].items():
        lines += [
            "",
            f"`torch.profiler`, {name}, the trainer's step, top ops by self CPU time:",
            "",
            "| op | calls/step | self ms/step | share |",
            "|---|---:|---:|---:|",
        ]
        for op in m["profile_top_ops"]:
            lines.append(
                f"| `{op['op']}` | {op['calls_per_step']:g} | {op['self_ms_per_step']:.2f} | {op['share']:.0%} |"
            )
    return "\n".join(lines)


GEMM_OPS = ("aten::mm", "aten::addmm", "aten::bmm")
CONV_OPS = ("aten::convolution_backward", "aten::_convolution", "aten::mkldnn_convolution", "aten::convolution")


def vae_explanation(r: dict[str, Any]) -> list[str]:
    """Why a training ratio is below the goal, in the profile's own numbers."""
    out = []
    for name, m in r["models"].items():
        ratio = m["interleaved"]["ratio_vs_hand_written"]
        if ratio["latentspec"] >= GOAL_TRAINING:
            continue
        ops = m["profile_top_ops"]
        heavy = sum(op["share"] for op in ops if op["op"] in GEMM_OPS + CONV_OPS)
        adam = sum(op["share"] for op in ops if "adam" in op["op"].lower())
        fused = ratio.get("hand_written_fused_adam")
        compiled = ratio.get("latentspec_train_compile")
        text = (
            f"**{name} below the {GOAL_TRAINING:g}× goal ({ratio['latentspec']:.2f}×):** matrix products and "
            f"convolutions are {heavy:.0%} of the trainer's step and the fused Adam {adam:.0%}; both loops run "
            "the same oneDNN/MKL kernels for the former, so only the rest can be won. The lever the "
            "hand-written loop leaves on the table, the fused optimizer, is worth "
            + (f"{fused:.2f}× on the hand-written loop itself in the same run" if fused else "little here")
            + "; that is the ceiling the trainer (which uses it by default) approaches."
        )
        if compiled is not None:
            warm = m["interleaved"].get("train_compile_warmup_s")
            text += (
                f" `train.compile` gives {compiled:.2f}× after {warm:.0f} s of compilation: it compiles the "
                "forward only (the backward and the optimizer stay eager), fuses elementwise ops worth a "
                "few per cent of the step, and calls the same GEMM/convolution kernels; keep it off on CPU."
            )
        out += ["", text]
    return out


def _seconds(s: float) -> str:
    m, s = divmod(round(s), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def overview_rows(results: dict[str, dict[str, Any] | None]) -> list[str]:
    """The Measured table's rows on results, spec tooling, data and CI (absolute numbers)."""
    rows = []
    vae, spec, proc, fresh = (results.get(k) for k in ("vae_mnist", "bench_spec", "bench_procedural", "fresh_clone"))
    if vae and not vae.get("quick"):
        n = vae["numbers"]
        rows.append(
            f"| `specs/vae_mnist.yaml`, 30 epochs, 4,000 train / 1,000 test digits (`{vae['command']}`) | test "
            f"−ELBO **{n['neg_elbo']:.1f} nats** (single sample); IWAE k={n['iwae_samples']} NLL {n['iwae_nll']:.1f}; "
            f"{n['active_units']}/{n['latent_dim']} active units; linear probe {n['probe_accuracy']:.1%}; "
            f"{n['train_seconds']:.0f} s of training |"
        )
    whole = ((results.get("bench_vae") or {}).get("models", {}).get("mlp_vae") or {}).get("whole_runs")
    if whole:
        hw, ls = whole["hand_written"]["neg_elbo"], whole["latentspec"]["neg_elbo"]
        rows.append(
            f"| the same VAE hand-written in PyTorch, {whole['epochs']} epochs each, same run "
            f"(`{results['bench_vae']['command'].strip()}`) | test −ELBO hand-written {hw:.2f} vs latentspec "
            f"{ls:.2f} nats (gap {ls - hw:+.2f}) |"
        )
    if spec and not spec.get("quick"):
        r = spec["rows"].values()
        v = [x["validate_s"] for x in r]
        c = [x["validate_cold_cli_s"] for x in r]
        k = [x["compile_s"] for x in r]
        rows += [
            f"| `latentspec validate`, per spec ({len(v)} specs, `{spec['command'].strip()}`) | {min(v):.2f}–{max(v):.2f} s "
            f"in process; {min(c):.1f}–{max(c):.1f} s as a fresh CLI process (Python start and imports) |",
            f"| `latentspec compile`, per spec | ≤ {max(k):.2f} s after imports |",
        ]
    if proc and not proc.get("quick"):
        gen = ", ".join(f"{k} {v['generate_s']:.2f} s" for k, v in proc["rows"].items() if "generate_s" in v)
        rows.append(f"| {proc['size']:,} procedural items (`{proc['command'].strip()}`) | {gen} |")
    if fresh:
        c1 = fresh["command_1"]
        rows.append(
            f"| quick-start command 1 on a fresh clone (venv, install, train, export, sample) | "
            f"{_seconds(c1['wall_seconds'])}; test −ELBO {c1['test_neg_elbo']:.1f} nats |"
        )
        ci = fresh.get("ci")
        if ci:
            tests = ", ".join(f"{v} {k}" for k, v in ci["tests"].items())
            rows.append(
                f"| `bash .ci/run` on a fresh clone (venv, install, {tests}) | {_seconds(ci['wall_seconds'])} |"
            )
    return rows


def quickstart_section(r: dict[str, Any]) -> str:
    """The README's line under the quick start: how long command 1 took, measured."""
    c1, m = r["command_1"], r["machine"]
    load = m.get("load_average_start")
    return (
        f"Command 1 took {_seconds(c1['wall_seconds'])} on a fresh clone on {m['cores']} cores"
        + (f" (load average {load[0]:.1f})" if load else "")
        + f", install included, and reaches a test −ELBO of {c1['test_neg_elbo']:.1f} nats\n"
        f"(`{r['command']}`; see [Measured](#measured))."
    )


def scale_section(r: dict[str, Any]) -> str:
    """bench_scale: step time and peak memory against the latent table's size."""
    lines = [
        provenance(r),
        "",
        f"GLO, table of N × {r['dim']} codes, batch {r['batch']}, torch threads {r['threads']}; median of "
        f"{r['blocks']} blocks of {r['steps_per_block']} steps, best of {r['rounds']} round(s); peak RSS of the "
        "process after the steps, and after also writing one checkpoint:",
        "",
        "| N | row-wise ms/step | dense ms/step | dense ÷ row-wise | row-wise peak RSS MB (steps / +checkpoint) "
        "| dense peak RSS MB (steps / +checkpoint) | checkpoint s (row-wise) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(row["n"], row["mode"]): row for row in r["rows"]}
    sizes = sorted({row["n"] for row in r["rows"]})
    for n in sizes:
        a, b = by[(n, "rows")], by[(n, "dense")]
        lines.append(
            f"| {n:,} | {a['step_ms']:.2f} | {b['step_ms']:.2f} | {b['step_ms'] / a['step_ms']:.1f}× "
            f"| {a['rss_after_steps_mb']:,.0f} / {a['peak_rss_mb']:,.0f} | {b['rss_after_steps_mb']:,.0f} / "
            f"{b['peak_rss_mb']:,.0f} | {a['checkpoint_s']:.2f} |"
        )
    growth = r["step_growth_smallest_to_largest"]
    lines += [
        "",
        f"Step time from N = {sizes[0]:,} to {sizes[-1]:,}: row-wise {growth['rows']:.2f}× (goal ≤ {GOAL_SCALE:g}×), "
        f"dense {growth['dense']:.1f}×.",
    ]
    prof = next((row for row in r["rows"] if row.get("profile_top_ops")), None)
    if prof:
        lines += [
            "",
            f"`torch.profiler`, the row-wise step at N = {prof['n']:,}, top ops by self CPU time:",
            "",
            "| op | calls/step | self ms/step | share |",
            "|---|---:|---:|---:|",
        ]
        for op in prof["profile_top_ops"]:
            lines.append(
                f"| `{op['op']}` | {op['calls_per_step']:g} | {op['self_ms_per_step']:.2f} | {op['share']:.0%} |"
            )
    if growth["rows"] > GOAL_SCALE and prof:
        top = ", ".join(f"`{op['op']}` {op['share']:.0%}" for op in prof["profile_top_ops"][:3])
        lines += [
            "",
            f"**Row-wise step time grows {growth['rows']:.2f}× (goal ≤ {GOAL_SCALE:g}×):** no op in the step "
            f"is O(N) (the profile at N = {prof['n']:,}: {top}); the growth is the batch's rows and their "
            "Adam moments being scattered over a table that no longer fits in the CPU caches (each row a "
            "cache miss), and the machine's load between processes.",
        ]
    return "\n".join(lines)


def readme_section(results: dict[str, dict[str, Any] | None]) -> str:
    lines = ["| what | result |", "|---|---|", *overview_rows(results)]
    vae, rt = results.get("bench_vae"), results.get("bench_runtime")
    if vae:
        for name, m in vae["models"].items():
            ratio = m["interleaved"]["ratio_vs_hand_written"]
            extra = ""
            if "latentspec_train_compile" in ratio:
                extra = f"; with `train.compile` {ratio['latentspec_train_compile']:.2f}×"
            lines.append(
                f"| training throughput, {name}, latentspec ÷ plain hand-written loop (interleaved) | "
                f"**{ratio['latentspec']:.2f}×**{extra} (load average {vae['machine']['load_average_start'][0]:.0f}) |"
            )
    if rt:
        for row in rt["rows"]:
            if row["batch"] == 1:
                lines.append(
                    f"| batch-1 {row['model']} `{row['entry']}`, eager PyTorch ÷ `latentspec-runtime` p50 | "
                    f"**{row['eager_over_runtime_p50']:.2f}×** ({_us(row['runtime']['p50_us'])} µs vs "
                    f"{_us(row['eager']['p50_us'])} µs) |"
                )
    scale = results.get("bench_scale")
    if scale and not scale.get("quick"):
        by = {(row["n"], row["mode"]): row for row in scale["rows"]}
        big = max(n for n, _ in by)
        growth = scale["step_growth_smallest_to_largest"]
        lines.append(
            f"| GLO latent table step time, N = {min(n for n, _ in by):,} → {big:,} codes × {scale['dim']} "
            f"(`{scale['command'].strip()}`) | row-wise **{growth['rows']:.2f}×** "
            f"({by[(big, 'rows')]['step_ms']:.1f} ms/step at {big:,}, peak RSS "
            f"{by[(big, 'rows')]['peak_rss_mb']:,.0f} MB); dense Adam {growth['dense']:.0f}× |"
        )
    lines.append("")
    lines.append("Generated by `python -m benchmarks.report` from `benchmarks/results/*.json`.")
    return "\n".join(lines)


def reliability_section(r: dict[str, Any]) -> str:
    """The README's one-paragraph figures of ``benchmarks/reliability.py``."""
    m, k = r["spec_mutations"], r["kill_points"]
    return (
        f"`{r['command'].strip()}` generates bad inputs of each class and cuts checkpoint writes off at\n"
        f"every file operation (and `kill -9`s real runs). Last run: {r['bad_inputs']:,} generated bad inputs in\n"
        f"{len(r['classes'])} classes, {r['handled']:,} handled ({r['tracebacks']} tracebacks, {r['silent']} silent "
        f"results);\n{m['tried']} spec mutations ({m['diagnosed']} refused with located diagnostics, {m['valid']} still "
        f"valid and\n{m['compiled']} compiled, slowest validation {m['slowest_cpu_s']:.2f} s of CPU); "
        f"{k['checkpoint_swap']} checkpoint-swap\ncut-offs and {k['kill_9']} `kill -9` runs resumed bit-exactly."
    )


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "bench_runtime": ("benchmarks/BENCHMARKS.md", runtime_section),
    "bench_vae": ("benchmarks/BENCHMARKS.md", vae_section),
    "bench_scale": ("benchmarks/BENCHMARKS.md", scale_section),
    "reliability": ("README.md", reliability_section),
    "fresh_clone": ("README.md", quickstart_section),
}
# results read by the README's Measured table only
TABLE_ONLY = ("vae_mnist", "bench_spec", "bench_procedural")


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with the block between the ``name`` markers replaced by ``body``."""
    pattern = re.compile(rf"(<!-- generated: {re.escape(name)} -->\n)(?:.*?\n)?(<!-- end: {re.escape(name)} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"report: no '<!-- generated: {name} -->' ... '<!-- end: {name} -->' markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def render(root: str = ROOT, results_dir: str = RESULTS) -> dict[str, str]:
    """The new text of every file the report writes, by path."""
    results = {name: load(name, results_dir) for name in (*SECTIONS, *TABLE_ONLY)}
    texts: dict[str, str] = {}
    for name, (rel, fn) in SECTIONS.items():
        path = os.path.join(root, rel)
        if path not in texts:
            with open(path) as f:
                texts[path] = f.read()
        result = results[name]
        body = fn(result) if result else f"No results yet: run `python -m benchmarks.{name}`."
        texts[path] = replace_block(texts[path], name, body)
    readme = os.path.join(root, "README.md")
    if readme not in texts:
        with open(readme) as f:
            texts[readme] = f.read()
    texts[readme] = replace_block(texts[readme], "measured", readme_section(results))
    return texts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only check that the files match the JSON")
    ap.add_argument("--results", default=RESULTS)
    args = ap.parse_args(argv)
    from latentspec_runtime._atomic import write_text

    stale = []
    for path, text in render(ROOT, args.results).items():
        with open(path) as f:
            same = f.read() == text
        if not same:
            stale.append(os.path.relpath(path, ROOT))
            if not args.check:
                write_text(path, text)
    if args.check and stale:
        print(f"out of date: {', '.join(stale)}; run python -m benchmarks.report", file=sys.stderr)
        return 1
    print(("wrote " if stale else "up to date: ") + (", ".join(stale) if stale else "BENCHMARKS.md, README.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
