"""The skeleton of a spec, declared once: the keys of each section (data, a field, a latent,
train, a stage, an export entry, an entry's own input, the top level), with type, default,
bounds and meaning, like a component's parameters.

The JSON Schema (``_schema.py``) is generated from these declarations, so it carries their
defaults and descriptions; the validator (``_validate.py``) reads defaults from them.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from latentspec.components._registry import MAX_DIM, MAX_INT, MAX_SEED, OPTIONAL, REQUIRED, Param
from latentspec.graph import FITTED_PRIORS  # priors a `fit:` stage of the same name fits

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME = {"type": "string", "pattern": NAME_PATTERN}
NAMES = {"anyOf": [NAME, {"type": "array", "items": NAME}]}
_NAME_LIST = {"type": "array", "items": NAME}
_NUM = {"type": "number"}
_COUNT = {"type": "number", "exclusiveMinimum": 0}


def ref(name: str) -> dict:
    return {"$ref": f"#/$defs/{name}"}


def named_map(item: dict, **extra: Any) -> dict:
    """A mapping from names to ``item``s (``latents:``, ``fields:``, ``export:``)."""
    return {"type": "object", "propertyNames": NAME, "additionalProperties": item, **extra}


@dataclasses.dataclass(frozen=True)
class Section:
    """The declared keys of one section of a spec."""

    name: str
    doc: str
    params: tuple[Param, ...]

    def param(self, key: str) -> Param:
        for p in self.params:
            if p.name == key:
                return p
        raise KeyError(key)

    def default(self, key: str) -> Any:
        """The value an absent ``key`` takes (a fresh copy: defaults may be lists or dicts)."""
        return copy.deepcopy(self.param(key).value)

    def resolve(self, raw: Mapping[str, Any] | None, **defaults: Any) -> dict[str, Any]:
        """Every declared key: its value in ``raw`` (already schema-valid), else ``defaults``'s
        (defaults that depend on other keys), else the declared default."""
        raw = raw or {}
        return {
            p.name: raw[p.name] if p.name in raw else defaults[p.name] if p.name in defaults else self.default(p.name)
            for p in self.params
        }

    def json_schema(self) -> dict:
        """A closed object schema of the section, with each key's default and description."""
        s: dict[str, Any] = {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.params},
            "additionalProperties": False,
        }
        required = [p.name for p in self.params if p.required]
        if required:
            s["required"] = required
        if self.doc:
            s["description"] = self.doc
        return s


def _p(name: str, type: str, default: Any = OPTIONAL, doc: str = "", **kw: Any) -> Param:
    return Param(name, type, default, doc, **kw)


FIELD = Section(
    "field",
    "One tensor of every example, taken from a dataset array.",
    (
        _p(
            "from",
            "any",
            REQUIRED,
            "the dataset array, `index` (the row number), or a list of scalar arrays stacked into a vector",
            schema={"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
        ),
        _p("dtype", "any", doc="float32 or int64 (default: from the array)", choices=("float32", "int64")),
        _p("scale", "range", doc="map the array's range onto [lo, hi]"),
        _p("shape", "shape", doc="reshape each example (same number of values)"),
        _p("classes", "int", doc="number of classes of an integer label", minimum=2),
        _p("one_hot", "bool", False, "one-hot encode the label (needs `classes`)"),
        _p("encode", "any", doc="sincos: each value v becomes [sin v, cos v]", choices=("sincos",)),
        _p(
            "where",
            "mapping",
            {},
            "keep rows whose arrays equal these values",
            schema={"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
        ),
    ),
)

DATA = Section(
    "data",
    "Where examples come from, how they are split, which tensors each holds, and how they are batched.",
    (
        _p(
            "dataset",
            "any",
            REQUIRED,
            "a built-in dataset by name, or {name: params} (a path for npz, idx, images)",
            schema=ref("dataset"),
        ),
        _p(
            "split",
            "any",
            {"train": 1.0},
            "rows per part: a count, or a fraction (≤ 1) of the dataset; `held_out: {array: [[lo, hi], …]}`"
            " keeps the rows whose array value lies in one of the closed intervals out of train and val,"
            " and draws test from them only (e.g. views not seen in training)",
            schema={
                "type": "object",
                "properties": {
                    "train": _COUNT,
                    "test": _COUNT,
                    "val": _COUNT,
                    "held_out": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "array",
                                "items": {"type": "number"},
                                "minItems": 2,
                                "maxItems": 2,
                            },
                        },
                    },
                },
                "additionalProperties": False,
                "required": ["train"],
            },
        ),
        _p(
            "fields",
            "any",
            REQUIRED,
            "the tensors of an example, by name",
            schema=named_map(ref("field"), minProperties=1),
        ),
        _p("batch", "int", 64, "examples per training batch", minimum=1),
        _p("test_batch", "int", 500, "examples per evaluation batch", minimum=1),
        _p(
            "sampler",
            "any",
            "shuffle",
            "what goes into a batch: a sampler by name, or {name: params}",
            schema=ref("sampler"),
        ),
        _p("drop_last", "bool", False, "drop the last, smaller training batch of each epoch"),
    ),
)

LATENT = Section(
    "latent",
    "A latent variable: a code drawn from a prior, or a table with one code per training example.",
    (
        _p("dim", "int", REQUIRED, "dimensions of the code", minimum=1),
        _p(
            "prior",
            "any",
            "normal",
            "the distribution a sample draws codes from (a table: none); gaussian and gmm are fitted "
            "to the codes by a `fit: gaussian` / `fit: gmm` stage",
            choices=("normal", "uniform", "none", *FITTED_PRIORS),
        ),
        _p("components", "int", 10, "mixture components of a gmm prior", minimum=1, maximum=MAX_DIM),
        _p(
            "fit_from",
            "any",
            doc="the tensor a fitted prior is fitted to (default: the latent; e.g. the encoder mean)",
            schema=NAME,
        ),
        _p(
            "table",
            "any",
            False,
            "one code per training example (GLO); {index: field} names the field of row numbers",
            schema={
                "anyOf": [
                    {"type": "boolean"},
                    {
                        "type": "object",
                        "properties": {"index": NAME, "size": {"type": "integer", "minimum": 1, "maximum": MAX_INT}},
                        "additionalProperties": False,
                    },
                ]
            },
        ),
        _p(
            "project",
            "any",
            "none",
            "after each step: onto the unit sphere, or into the ball of `radius`",
            choices=("none", "unit_l2", "l2_ball"),
        ),
        _p("radius", "float", 1.0, "radius of the l2 ball", exclusive_minimum=0),
        _p("init", "any", "normal", "initial table codes (a table: pca)", choices=("pca", "normal", "zeros")),
        _p("init_scale", "float", 1.0, "scale of normal initial codes (a table: 0.1)", minimum=0),
        _p("candidates", "int", 1, "codes drawn per example (IMLE)", minimum=1),
        _p(
            "groups",
            "mapping",
            {},
            "named groups of code units (factors of DC-IGN)",
            schema=named_map(
                {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": MAX_DIM}, "minItems": 1}
            ),
        ),
    ),
)

#: A latent table's defaults where they differ from a sampled latent's.
TABLE_DEFAULTS: dict[str, Any] = {"prior": "none", "init": "pca", "init_scale": 0.1}

_STAGE_KEYS = (
    _p("optimizer", "any", {"name": "adam"}, "the optimizer, e.g. {name: adam, lr: 0.001}", schema=ref("optimizer")),
    _p("epochs", "int", 10, "passes over the training split", minimum=0),
    _p("steps", "int", doc="optimizer steps instead of epochs (rounded up to whole epochs)", minimum=0),
    _p("schedule", "any", doc="a learning-rate multiplier over the training", schema=ref("schedule")),
    _p("clip_grad", "float", doc="clip the gradient norm to this", exclusive_minimum=0),
)

STAGE = Section(
    "stage",
    "One phase of training: what it trains, on which terms, with which optimizer, for how long.",
    (
        _p("name", "any", REQUIRED, "the stage's name", schema=NAME),
        _p(
            "trainable",
            "any",
            doc="nodes and latent tables it trains (default: all with parameters)",
            schema=_NAME_LIST,
        ),
        _p(
            "terms",
            "any",
            doc="objective terms it minimises (default: those not limited to other stages)",
            schema=_NAME_LIST,
        ),
        dataclasses.replace(_STAGE_KEYS[0], default=OPTIONAL, doc="the optimizer (default: train.optimizer)"),
        dataclasses.replace(
            _STAGE_KEYS[1],
            default=OPTIONAL,
            doc="passes over the training split (default: train.epochs; 0 for a fit stage)",
        ),
        _STAGE_KEYS[2],
        _p(
            "fit",
            "any",
            doc="fit in closed form instead: pca modules, or the gaussian / gmm prior of latents",
            choices=("pca", *FITTED_PRIORS),
        ),
        *_STAGE_KEYS[3:],
    ),
)

TRAIN = Section(
    "train",
    "How the model trains: one stage given by the keys below, or a list of `stages`.",
    (
        *_STAGE_KEYS,
        _p(
            "stages",
            "any",
            doc="phases of training, in order",
            schema={"type": "array", "items": ref("stage"), "minItems": 1},
        ),
        _p("amp", "bool", False, "mixed precision on CUDA"),
        _p("compile", "bool", False, "torch.compile the training graph"),
        _p(
            "table_updates",
            "any",
            "rows",
            "latent tables: update only the batch's rows each step (rows: lazy Adam / SGD / Adagrad, "
            "O(batch × dim)), or every row (dense: the dense optimizer, O(size × dim)); weight decay, "
            "momentum and RMSprop always update densely",
            choices=("rows", "dense"),
        ),
        _p("eval_every", "int", 1, "epochs between test evaluations (0 = only at the end)", minimum=0),
        _p("samples_every", "int", 0, "epochs between sample grids (0 = none)", minimum=0),
        _p(
            "checkpoint_every",
            "int",
            0,
            "epochs between `last` checkpoints (0 = auto: after an epoch once the time since the last one is 50× "
            "what writing it took, so checkpoints cost ≤ 2% of the training; every epoch when epochs are long). "
            "The last epoch of every stage is always written",
            minimum=0,
        ),
        _p("log_every", "int", 10, "steps between per-step metric rows", minimum=1),
        _p(
            "track",
            "any",
            [],
            "experiment-tracking sinks: a tracker by name, or {name: params} (also `latentspec train --track`)",
            schema={"type": "array", "items": ref("tracker")},
        ),
    ),
)

#: What an export entry does, by kind: the runtime's convenience methods find entries by kind
#: (docs/bundle-format.md). An entry named after a kind has that kind; others declare it.
ENTRY_KINDS: dict[str, str] = {
    "encode": "data to codes (the runtime's encode, code, interpolate, edit)",
    "decode": "codes to data",
    "sample": "prior noise (and conditions) to data",
    "generate": "named inputs to data; noise not given is drawn",
    "reconstruct": "data to data through the code",
    "swap": "data to data of another domain (e.g. face A to face B)",
    "refine": "data to an estimate refined by a loop, its trip count an input",
    "predict": "data to a value (a prediction that is not a code)",
    "invert": "optimise a code for the data (an `optimize:` entry)",
    "inpaint": "optimise a code for the known pixels of the data under a mask (an `optimize:` entry)",
    "optimize": "any other `optimize:` entry",
}
#: Kinds whose entries optimise a code (they need `optimize:`).
OPTIMIZE_KINDS = ("invert", "inpaint", "optimize")

ENTRY_INPUT = Section(
    "entry input",
    "A tensor only this entry takes (e.g. an inpainting mask).",
    (
        _p(
            "shape",
            "any",
            REQUIRED,
            "per-example shape",
            schema={"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": MAX_DIM}},
        ),
        _p("dtype", "any", "float32", "float32 or int64", choices=("float32", "int64")),
        _p(
            "meaning",
            "any",
            doc="what it holds; a mask is 1 where the data is known",
            choices=("image", "mask", "latent", "label", "value"),
        ),
        _p("range", "range", doc="value range (a mask: [0, 1])"),
    ),
)

ENTRY = Section(
    "entry",
    "An entry point of the exported bundle: the sub-graph from its inputs to its outputs.",
    (
        _p("in", "any", REQUIRED, "input tensors (latents left out are drawn from their prior)", schema=_NAME_LIST),
        _p("out", "any", REQUIRED, "output tensors", schema={"type": "array", "items": NAME, "minItems": 1}),
        _p("optimize", "any", doc="a latent to optimise for the inputs instead of encoding them", schema=NAME),
        _p(
            "prior",
            "any",
            doc="latents drawn from their prior even where the inputs reach their encoder (a conditional "
            "sampler: `sample: {in: [y], prior: [z], out: [x_mean]}`)",
            schema=_NAME_LIST,
        ),
        _p(
            "terms",
            "any",
            doc="what an optimize entry minimises: objective term names or terms",
            schema={"type": "array", "items": {"anyOf": [NAME, ref("term")]}, "minItems": 1},
        ),
        _p("steps", "int", 200, "optimizer steps of an optimize entry", minimum=0),
        _p("lr", "float", 0.05, "learning rate of an optimize entry", exclusive_minimum=0),
        _p("starts", "int", 1, "random starts of an optimize entry (the best is kept)", minimum=1),
        _p("iterations", "int", doc="default trip count of a loop entry", minimum=0),
        _p(
            "inputs",
            "any",
            {},
            "tensors only this entry takes (e.g. an inpainting mask), with their shapes",
            schema=named_map(ref("entry_input")),
        ),
        _p("doc", "str", doc="what the entry is for"),
        _p(
            "kind",
            "any",
            doc="what the entry does (default: its name, when that is a kind)",
            choices=tuple(ENTRY_KINDS),
        ),
    ),
)

#: The keys every objective term has, beside its own parameters.
TERM = Section(
    "term",
    "",
    (
        _p("in", "any", REQUIRED, "the tensors it scores, in the order the term names them", schema=NAMES),
        _p(
            "weight",
            "any",
            1.0,
            "its weight in the loss: a number, or a schedule over the training (e.g. KL warm-up)",
            schema={"anyOf": [_NUM, ref("schedule")]},
        ),
        _p("stages", "any", doc="the stages it belongs to (default: every stage)", schema=_NAME_LIST),
        _p("doc", "str", doc="what the term is for"),
    ),
)

_METRIC = {
    "type": "string",
    "minLength": 1,
    "description": "a dotted path into the run's eval.json, or NAME:path into the eval.json of baseline NAME's run",
}
_OPERAND = {
    "anyOf": [
        _NUM,
        _METRIC,
        {
            "type": "object",
            "properties": {"of": _METRIC, "times": _NUM, "plus": _NUM},
            "required": ["of"],
            "additionalProperties": False,
            "description": "another metric, times k or plus c",
        },
    ]
}
_WITHIN = {
    "type": "object",
    "properties": {
        "of": {"anyOf": [_NUM, _METRIC]},
        "rel": {"type": "number", "minimum": 0},
        "abs": {"type": "number", "minimum": 0},
    },
    "required": ["of"],
    "additionalProperties": False,
    "description": "|metric − of| ≤ rel·|of| (or ≤ abs)",
}
#: The comparators of a claim, and the relation each states.
CLAIM_COMPARATORS = {"lt": "<", "le": "≤", "gt": ">", "ge": "≥", "within": "≈"}

CLAIM = Section(
    "claim",
    "A checkable statement about the run's results (`latentspec check RUN`): a metric of eval.json "
    "compared with a number, another metric, or k times / c plus another metric; a metric written "
    "NAME:path is read from the eval.json of baseline NAME's run (`--baseline NAME=RUN`).",
    (
        _p(
            "metric",
            "any",
            REQUIRED,
            "a path into eval.json, e.g. test.iwae_nll (vae:test.iwae_nll: baseline vae's)",
            schema=_METRIC,
        ),
        *(
            _p(op, "any", doc=f"metric {sym} this", schema=_OPERAND)
            for op, sym in CLAIM_COMPARATORS.items()
            if op != "within"
        ),
        _p("within", "any", doc="metric within a relative (rel) or absolute (abs) tolerance of `of`", schema=_WITHIN),
        _p("name", "any", doc="the claim's name (default: claim N)", schema=NAME),
        _p("doc", "str", doc="what the claim says, e.g. the paper result it reproduces"),
    ),
)

BASELINE = Section(
    "baseline",
    "Another run that claims compare this run with (`latentspec check RUN --baseline NAME=OTHER_RUN`).",
    (
        _p("doc", "str", REQUIRED, "what the other run is, e.g. the same networks trained on the ELBO"),
        _p("spec", "str", doc="where its spec is, for people (not read: the run's spec.yaml is)"),
    ),
)

#: The optimizer when a spec names none, and the `name` an optimizer mapping defaults to.
DEFAULT_OPTIMIZER = "adam"

SPEC_VERSION = 1

TOP = Section(
    "spec",
    "",
    (
        _p("$schema", "str"),
        _p("latentspec", "any", REQUIRED, "spec language version", schema={"const": SPEC_VERSION}),
        _p("name", "any", REQUIRED, "the model's name", schema=NAME),
        _p("description", "str", "", "what the model is"),
        _p("seed", "int", 0, "seed of the data split, initialisation and noise", minimum=0, maximum=MAX_SEED),
        _p("data", "any", REQUIRED, schema=ref("data")),
        _p("latents", "any", {}, "latent variables by name", schema=named_map(ref("latent"))),
        _p(
            "nodes",
            "any",
            REQUIRED,
            "the modules and ops of the graph, by name",
            schema=named_map(ref("node"), minProperties=1),
        ),
        _p("objective", "any", {}, "the terms training minimises, by name", schema=named_map(ref("term"))),
        _p("train", "any", {}, schema=ref("train")),
        _p("export", "any", {}, "entry points of the bundle, by name", schema=named_map(ref("entry"))),
        _p("sweep", "any", doc="a hyperparameter search (`latentspec sweep`)", schema=ref("sweep")),
        _p(
            "claims",
            "any",
            [],
            "statements about the results that `latentspec check` verifies",
            schema={"type": "array", "items": ref("claim")},
        ),
        _p(
            "baselines",
            "any",
            {},
            "other runs that claims compare this one with, by name (a claim reads NAME:path)",
            schema=named_map(ref("baseline")),
        ),
    ),
)

SECTIONS = (TOP, DATA, FIELD, LATENT, TRAIN, STAGE, TERM, ENTRY, ENTRY_INPUT, CLAIM, BASELINE)
