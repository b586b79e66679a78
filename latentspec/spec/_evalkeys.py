"""What `latentspec eval` writes into ``eval.json`` for a spec, declared without running it.

Each part of the evaluation declares the keys it writes, on the conditions under which it
writes them (the spec's terms, entries and dataset) and the `eval` flag that asks for it, so a
spec's `claims:` are checked against real metric paths when it is validated, and `latentspec
check` can say which flag a missing number needs. ``tests/test_claims.py`` runs eval on tiny
runs and checks that every key written is declared here, and every key declared is written.

Also here, torch-free because the declarations need them: which tensors form a VAE
(:func:`find_vae`), which terms mean something on held-out data (:func:`held_out_terms`), and
the encoder and reconstruction the amortisation report compares an `optimize:` entry with.
For example ``lookup(eval_keys(spec), "test.iwae_nll").flag`` is ``"--iwae K"`` for a VAE.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from latentspec.spec._model import EntrySpec, Spec

ANY = "*"  # a path segment that stands for any name (a factor of the dataset)


@dataclasses.dataclass(frozen=True)
class VaeParts:
    """The tensors of a Gaussian-posterior latent model, found in the spec."""

    x: str  # the data field the likelihood scores
    mu: str
    logvar: str
    z: str
    logits: str  # the likelihood's reconstruction input (logits or mean)
    likelihood: str  # bernoulli | gaussian
    variance: float = 1.0


def find_vae(spec: Spec) -> VaeParts | None:
    """The VAE's tensors, by the roles its terms declare (``TermComponent.roles``): an
    importance-weighted bound names them all; else a Gaussian KL on the inputs of a
    reparameterize node, and a likelihood of a data field with no learned variance."""
    terms = list(spec.objective.values())
    iw = next((t for t in terms if t.distribution and t.role("sample") and t.role("mean") and t.role("logvar")), None)
    if iw is not None:
        return VaeParts(
            iw.role("target"),
            iw.role("mean"),
            iw.role("logvar"),
            iw.role("sample"),
            iw.role("reconstruction"),
            iw.distribution,
            float(iw.cfg.get("variance") or 1.0),
        )
    kl = next((t for t in terms if t.role("mean") and t.role("logvar") and not t.role("reconstruction")), None)
    draw = next((n for n in spec.nodes.values() if n.type == "reparameterize"), None)
    lik = next(
        (
            t
            for t in terms
            if t.distribution in ("bernoulli", "gaussian")
            and t.role("logvar") is None
            and t.role("target") in spec.data.fields
        ),
        None,
    )
    if kl is None or draw is None or lik is None or (kl.role("mean"), kl.role("logvar")) != tuple(draw.inputs):
        return None
    return VaeParts(
        lik.role("target"),
        draw.inputs[0],
        draw.inputs[1],
        draw.outputs[0],
        lik.role("reconstruction"),
        lik.distribution,
        float(lik.cfg.get("variance") or 1.0),
    )


def held_out_terms(spec: Spec, names: Iterable[str]) -> tuple[str, ...]:
    """The terms that mean something on held-out data: not those computed from a latent table,
    whose codes exist only for training rows (GLO evaluates new data through `invert`)."""
    from latentspec.graph import plan

    indexes = {lat.index for lat in spec.latents.values() if lat.table}
    if not indexes:
        return tuple(names)
    return tuple(
        name
        for name in names
        if not any(
            ph.tensor in indexes for ph in plan(spec.graph, spec.objective[name].inputs, training=True).placeholders
        )
    )


def held_out_invert(spec: Spec, terms: Iterable[str]) -> EntrySpec | None:
    """The `invert` entry that measures a latent-table model (GLO) on held-out rows, when some
    of ``terms`` read a latent table: an entry of kind invert over data fields only, whose
    optimised latent is a table. Training records its objective as ``test.<entry>``."""
    terms = tuple(terms)
    e = spec.entry_of_kind("invert")
    if e is None or not e.optimize or any(t not in spec.data.fields for t in e.inputs):
        return None
    lat = spec.latents.get(e.optimize)
    if lat is None or not lat.table or set(held_out_terms(spec, terms)) == set(terms):
        return None
    return e


def amortised_encoder(spec: Spec, variable: str, inputs: Sequence[str]) -> tuple[str, tuple[str, ...]] | None:
    """(code tensor, its inputs) of an encoder that produces ``variable`` from ``inputs``."""
    v = find_vae(spec)
    if v is not None and v.z == variable and v.x in inputs:
        return v.mu, (v.x,)
    for e in spec.export.values():
        if e.kind == "encode" and not e.optimize and variable in e.outputs and set(e.inputs) <= set(inputs):
            return variable, e.inputs
    return None


def reconstruction_of(spec: Spec, e: EntrySpec) -> str | None:
    """The output of `optimize:` entry ``e`` shaped like its data input (what it reconstructs)."""
    data = e.inputs[0]
    shape = spec.infos[data].shape
    return next(
        (t for t in e.outputs if t != e.optimize and t != data and spec.infos.get(t) and spec.infos[t].shape == shape),
        None,
    )


def amortised_entries(spec: Spec) -> list[str]:
    """The `optimize:` entries the amortisation report measures: data inputs only (no mask of
    their own) and an encoder of their code."""
    return [
        name
        for name, e in spec.export.items()
        if e.optimize
        and all(t in spec.data.fields for t in e.inputs)
        and amortised_encoder(spec, e.optimize, e.inputs) is not None
    ]


def decoder_of_field(spec: Spec) -> tuple[str, str, str] | None:
    """(entry, code, field) of the spec's `decode` entry when it maps one vector code to a
    data field's likeness: a tensor of that field's shape, or (shape not inferred) one that an
    objective term compares with the field. The decoder `eval --pca` compares with PCA."""
    e = spec.entry_of_kind("decode")
    if e is None or e.optimize or len(e.inputs) != 1 or len(e.outputs) != 1:
        return None
    code, out = spec.infos.get(e.inputs[0]), spec.infos.get(e.outputs[0])
    if code is None or out is None or code.shape is None or len(code.shape) != 1 or code.dtype == "int64":
        return None
    paired = {f for t in spec.objective.values() if e.outputs[0] in t.inputs for f in t.inputs}
    for f in spec.data.fields:
        info = spec.infos.get(f)
        if info is not None and info.shape and (info.shape == out.shape or (out.shape is None and f in paired)):
            return e.name, e.inputs[0], f
    return None


@dataclasses.dataclass(frozen=True)
class Refinement:
    """What `eval` reports per iteration of a `refine` entry's loop: the objective terms that
    compare the loop's output with data fields, after 0 (the loop's initial state), 1, …,
    default + 1 iterations."""

    entry: str
    output: str  # the entry's output the loop produces
    terms: tuple[str, ...]
    iterations: tuple[int, ...]


def refinement_of(spec: Spec) -> Refinement | None:
    """The refinement report of a spec whose `refine` entry maps data fields to a loop's
    output that held-out terms compare with data fields (the feedback loop's pose error)."""
    e = spec.entry_of_kind("refine")
    if e is None or e.optimize or any(t not in spec.data.fields for t in e.inputs):
        return None
    loop = next((n for n in spec.nodes.values() if n.body is not None and set(n.outputs) & set(e.outputs)), None)
    if loop is None:
        return None
    out = next(t for t in e.outputs if t in loop.outputs)
    terms = tuple(
        name
        for name in held_out_terms(spec, tuple(spec.objective))
        if out in spec.objective[name].inputs
        and all(t == out or t in spec.data.fields for t in spec.objective[name].inputs)
    )
    if not terms:
        return None
    default = e.iterations if e.iterations is not None else int(loop.cfg.get("steps", 2))
    return Refinement(e.name, out, terms, tuple(range(default + 2)))


@dataclasses.dataclass(frozen=True)
class EvalKey:
    """One value `latentspec eval` writes: its dotted path in eval.json (``*`` matches any one
    name), the flag that asks for it (None: always written), whether it is a number, what it is."""

    path: str
    flag: str | None
    numeric: bool
    doc: str

    def matches(self, path: str) -> bool:
        mine, theirs = self.path.split("."), path.split(".")
        return len(mine) == len(theirs) and all(a in (ANY, b) for a, b in zip(mine, theirs))


def _keys(prefix: str, names: Iterable[str], flag: str | None, doc: str, numeric: bool = True) -> list[EvalKey]:
    return [EvalKey(f"{prefix}{n}", flag, numeric, doc) for n in names]


def eval_keys(spec: Spec) -> tuple[EvalKey, ...]:
    """Every key `latentspec eval` can write for ``spec``, each with the flag that asks for it."""
    keys = [EvalKey("checkpoint", None, False, "the checkpoint evaluated (last or best)")]
    keys += _keys("test.", held_out_terms(spec, spec.objective), None, "the objective term's mean on the test split")
    inv = held_out_invert(spec, spec.objective)
    if inv is not None:
        keys.append(EvalKey(f"test.{inv.name}", None, True, "the `invert` entry's objective on fitted test codes"))
    if find_vae(spec) is not None:
        keys += [
            EvalKey("test.neg_elbo", None, True, "−ELBO per example, nats"),
            EvalKey("test.neg_elbo_recon", None, True, "the −ELBO's reconstruction part, −E log p(x|z), nats"),
            EvalKey("test.neg_elbo_kl", None, True, "the −ELBO's KL(q(z|x) ‖ p(z)) part, nats"),
            EvalKey("test.active_units", None, True, "latent units whose posterior mean varies (Cov > 0.01)"),
            EvalKey("test.latent_dim", None, True, "units of the code"),
            EvalKey("test.iwae_nll", "--iwae K", True, "importance-weighted bound on −log p(x), nats"),
            EvalKey("test.iwae_samples", "--iwae K", True, "K, the importance samples per example"),
        ]
    labels = [f for f, info in ((f, spec.infos.get(f)) for f in spec.data.fields) if info and info.dtype == "int64"]
    if labels:
        keys += [
            EvalKey("test.probe_accuracy", "--probe FIELD", True, "test accuracy of a linear probe of the codes"),
            EvalKey("probe_field", "--probe FIELD", False, "the label field the probe predicts"),
        ]
    if any(not e.inputs and not e.optimize for e in spec.export.values()):
        flag = "--features FEATURE_RUN"
        keys += _keys(
            "sample_quality.",
            ("fd", "kid", "kid_std", "precision", "recall", "k", "real", "generated"),
            flag,
            "sample quality against the test images (docs/metrics.md)",
        )
        keys += _keys("sample_quality.features.", ("run", "tensor", "input"), flag, "the feature network", False)
        entries = sampling_entries(spec)
        for name in entries if len(entries) > 1 else ():
            keys += _keys(
                f"sample_quality.entries.{name}.",
                ("fd", "kid", "kid_std", "precision", "recall", "k", "real", "generated"),
                flag,
                f"sample quality of entry '{name}' (a spec with several entries that sample)",
            )
    if conditional_label(spec) is not None:
        flag, c = "--class-fidelity CLASSIFIER_RUN", "class_fidelity."
        doc = "samples drawn per asked class, classified by a classifier run (docs/metrics.md)"
        keys += _keys(c, ("accuracy", "min_class_accuracy", "samples", "per_class_samples", "real_accuracy"), flag, doc)
        keys.append(EvalKey(f"{c}per_class.{ANY}", flag, True, "the fraction of class c's samples classified as c"))
        keys += _keys(c, ("field", "confusion"), flag, "the label asked for; rows asked, columns classified", False)
        keys += _keys(f"{c}classifier.", ("run", "entry", "input", "classes"), flag, "the classifier", False)
    dataset = getattr(spec.data.dataset, "instance", None)
    if getattr(dataset, "procedural", False):
        flag = "--disentanglement"
        d = "disentanglement."
        keys += _keys(d, ("mig", "sap", "examples", "units"), flag, "disentanglement of the codes (docs/metrics.md)")
        keys += _keys(
            f"{d}dci.",
            ("disentanglement", "completeness", "informativeness", "informativeness_chance"),
            flag,
            "DCI (Eastwood & Williams 2018)",
        )
        keys += _keys(f"{d}factorvae.", ("score", "chance", "active_units"), flag, "the FactorVAE score")
        keys += _keys(f"{d}factors.{ANY}.", ("best_unit", "spearman"), flag, "per factor: its best unit and |ρ|")
        if edit_measurable(spec):
            keys += _edit_keys(getattr(dataset, "regions", None) or {})
    if decoder_of_field(spec) is not None:
        doc = "the decode entry against PCA of its data field with as many components as the code"
        keys += _keys("pca.", ("k", "test_mse", "cos_min", "cos_mean"), "--pca", doc)
        keys += _keys("pca.", ("cosines", "entry", "field"), "--pca", doc, False)
    r = refinement_of(spec)
    if r is not None:
        keys.append(EvalKey("refinement.entry", None, False, "the `refine` entry measured per iteration"))
        for t in r.terms:
            doc = f"term '{t}' on the test split with the `{r.entry}` entry's loop run K times (0: its start)"
            keys += _keys(f"refinement.{t}.", map(str, r.iterations), None, doc)
    for name in amortised_entries(spec):
        a = f"amortisation.{name}."
        doc = f"the amortisation gap of entry '{name}'"
        keys += _keys(a, ("variable", "encoder", "reconstruction"), None, doc, False)
        keys += _keys(a, ("examples", "steps"), None, doc)
        measured = ("loss", "ms_per_example") + (("mse",) if reconstruction_of(spec, spec.export[name]) else ())
        for mode in ("encode", "optimize", "encode_optimize"):
            keys += _keys(f"{a}{mode}.", measured, None, doc)
    return tuple(keys)


def edit_measurable(spec: Spec) -> bool:
    """Whether `eval --edit-fidelity` can edit this spec's items (its dataset must also be
    procedural): an encoder code (a VAE's posterior mean, or an `encode` entry of one input) and
    a `decode` entry from the code latent to the field the encoder reads."""
    dec = decoder_of_field(spec)
    if dec is None:
        return False
    v = find_vae(spec)
    if v is not None:
        return dec[1] == v.z and dec[2] == v.x
    e = spec.entry_of_kind("encode")
    return e is not None and not e.optimize and e.inputs == (dec[2],) and e.outputs[:1] == (dec[1],)


def _edit_keys(regions: dict) -> list[EvalKey]:
    flag, e = "--edit-fidelity DIRECTION", f"edit.{ANY}."
    doc = (
        "per direction: held-out items edited by a step of its factor against their re-rendered truth (docs/metrics.md)"
    )
    keys = _keys(e, ("mse_input", "mse_before", "mse_after", "fraction_closer"), flag, doc)
    keys += _keys(e, ("step", "alpha", "factor_per_alpha", "examples"), flag, "the edit: factor step, alpha, items")
    keys += _keys(e, ("factor", "source"), flag, "the factor the direction moves; how it was built", False)
    if regions:
        where = f"when the dataset marks the region its factor changes ({', '.join(sorted(regions))})"
        keys += _keys(
            e, ("region_mse_input", "region_mse_before", "region_mse_after"), flag, f"the MSEs there, {where}"
        )
        keys.append(EvalKey(f"{e}region", flag, False, f"the region's name, {where}"))
    return keys


def sampling_entries(spec: Spec) -> list[str]:
    """The entries `eval --features` draws from: the main sampling entry (the one of kind
    ``sample``, else the first with no inputs) first, then every other entry with no inputs
    and no `optimize:`. Empty when nothing samples."""
    free = [name for name, e in spec.export.items() if not e.inputs and not e.optimize]
    main = spec.entry_of_kind("sample")
    first = main.name if main is not None else (free[0] if free else None)
    return [] if first is None else [first, *(name for name in free if name != first)]


def conditional_label(spec: Spec) -> str | None:
    """The class label that the spec's sampling entry takes as its one input (a conditional
    generator's ``y``), or None. The sampling entry: the one of kind ``sample``, else one with
    no inputs (as ``latentspec sample`` picks it)."""
    e = spec.entry_of_kind("sample") or next((s for s in spec.export.values() if not s.inputs and not s.optimize), None)
    if e is None or e.optimize or len(e.inputs) != 1:
        return None
    info = spec.infos.get(e.inputs[0])
    return e.inputs[0] if info is not None and info.dtype == "int64" and info.classes else None


_VAE_KEYS = ("neg_elbo", "neg_elbo_recon", "neg_elbo_kl", "active_units", "latent_dim", "iwae_nll", "iwae_samples")
_NEEDS = {
    "sample_quality": "`eval --features` needs an export entry that samples (`in: []`)",
    "disentanglement": "`eval --disentanglement` needs a dataset with ground-truth factors (shapes, hands, faces)",
    "pca": "`eval --pca` needs a `decode` entry from one vector code to a tensor shaped like a data field",
    "edit": "`eval --edit-fidelity` needs a procedural dataset (shapes, hands, faces), an encoder code and a "
    "`decode` entry from its latent to the field the encoder reads, e.g. `decode: {in: [z], out: [x_mean]}`",
    "class_fidelity": "`eval --class-fidelity` needs a sampling entry that takes one class label, "
    "e.g. `sample: {in: [y], prior: [z], out: [x_mean]}`",
    "amortisation": "eval measures it for an `optimize:` entry over data fields whose code an encoder also produces",
    "refinement": (
        "eval measures it for a `refine` entry over data fields whose loop output a held-out term "
        "compares with data fields"
    ),
}


def why_not(spec: Spec, path: str) -> str | None:
    """Why `eval` writes no ``path`` for ``spec``, when it is a metric of a kind of model or
    data this spec is not (None: not a metric eval knows)."""
    head, _, rest = path.partition(".")
    if head == "test" and rest in _VAE_KEYS and find_vae(spec) is None:
        return (
            "eval writes it for a VAE: a reparameterize node whose inputs a gaussian_kl term scores, "
            "and a bernoulli_nll or gaussian_nll likelihood of a data field"
        )
    if path in ("test.probe_accuracy", "probe_field"):
        return "`eval --probe` needs an integer label field, e.g. `y: {from: labels, classes: 10}`"
    if head in _NEEDS and not any(k.path.startswith(f"{head}.") for k in eval_keys(spec)):
        return _NEEDS[head]
    return None


def lookup(keys: Iterable[EvalKey], path: str) -> EvalKey | None:
    """The declared key that ``path`` names, or None."""
    return next((k for k in keys if k.matches(path)), None)


def value_at(result: dict, path: str):
    """The value at dotted ``path`` of an eval.json object; KeyError when it has none."""
    cur = result
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(path)
        cur = cur[part]
    return cur


def written_paths(result: dict, prefix: str = "") -> list[str]:
    """Every leaf path of an eval.json object."""
    out = []
    for k, v in result.items():
        p = f"{prefix}{k}"
        out += written_paths(v, p + ".") if isinstance(v, dict) else [p]
    return out
