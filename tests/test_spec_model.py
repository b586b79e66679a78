"""The resolved spec: typed choices (component + frozen config), the skeleton sections declared
once (schema defaults, validator defaults), keyword-only dataclasses, entry kinds, term roles."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import pytest

from latentspec.cli import main
from latentspec.components import DATASETS, OPTIMIZERS, SAMPLERS, SCHEDULES, TERMS, Choice, load_all
from latentspec.spec import _model, _sections, spec_schema, validate_text
from latentspec.spec._sections import DATA, ENTRY, SECTIONS, TRAIN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "specs", "vae_mnist.yaml")) as f:
    VAE = f.read()


def vae(**swap: str) -> str:
    text = VAE
    for old, new in swap.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def valid(text: str):
    spec, diags = validate_text(text, "vae.yaml")
    assert spec is not None, "\n".join(map(str, diags))
    return spec


def errors(text: str) -> list[str]:
    spec, diags = validate_text(text, "vae.yaml")
    assert spec is None
    return [str(d) for d in diags if d.severity == "error"]


# -- the skeleton, declared once -------------------------------------------------------------


def test_latentspec_schema_shows_the_section_defaults(capsys):
    assert main(["schema"]) == 0
    defs = json.loads(capsys.readouterr().out)["$defs"]
    for section, key, default in (("data", "batch", 64), ("train", "epochs", 10), ("entry", "steps", 200)):
        assert defs[section]["properties"][key]["default"] == default
        assert defs[section]["properties"][key]["description"]
    assert defs["entry"]["properties"]["lr"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "description": "learning rate of an optimize entry",
        "default": 0.05,
    }


def test_every_declared_key_is_in_the_schema_with_its_default_and_meaning():
    defs = spec_schema()["$defs"]
    names = {"data": "data", "field": "field", "latent": "latent", "train": "train", "stage": "stage"}
    names.update({"entry": "entry", "entry input": "entry_input", "claim": "claim", "baseline": "baseline"})
    for section in SECTIONS:
        if section.name not in names:
            continue
        props = defs[names[section.name]]["properties"]
        assert list(props) == [p.name for p in section.params], section.name
        for p in section.params:
            if p.value is not None:
                assert props[p.name]["default"] == p.value, (section.name, p.name)
            assert "null" not in json.dumps(props[p.name]), (section.name, p.name)  # OPTIONAL is not nullable


def test_the_validator_reads_defaults_from_the_declarations(monkeypatch):
    import latentspec.spec._validate as v

    def with_default(section, key, value):
        params = tuple(dataclasses.replace(p, default=value) if p.name == key else p for p in section.params)
        return dataclasses.replace(section, params=params)

    monkeypatch.setattr(v, "DATA", with_default(DATA, "batch", 17))
    monkeypatch.setattr(v, "TRAIN", with_default(TRAIN, "epochs", 3))
    monkeypatch.setattr(v, "ENTRY", with_default(ENTRY, "lr", 0.25))
    spec = valid(vae(**{"  batch: 128\n": "", "  epochs: 30\n": ""}))
    assert spec.data.batch == 17
    assert spec.train.stages[0].epochs == 3
    assert spec.export["decode"].lr == 0.25


# -- typed choices -----------------------------------------------------------------------------


def test_every_nested_choice_is_a_component_with_a_frozen_config():
    spec = valid(
        vae(
            **{
                "weight: 1.0}": "weight: {schedule: linear, steps: 100}}",
                "  epochs: 30\n": "  epochs: 30\n  schedule: {schedule: cosine, epochs: 30}\n",
            }
        )
    )
    load_all()
    stage = spec.train.stages[0]
    assert stage.optimizer.component is OPTIMIZERS["adam"] and stage.optimizer.config.lr == 1.0e-3
    assert stage.optimizer.config.betas == (0.9, 0.999)
    assert stage.schedule.component is SCHEDULES["cosine"] and stage.schedule.config.epochs == 30
    weight = spec.objective["kl"].weight
    assert isinstance(weight, Choice) and weight.component is SCHEDULES["linear"] and weight.config.steps == 100
    assert spec.objective["recon"].weight == 1.0
    assert spec.data.dataset.component is DATASETS["mnist5k"]
    assert spec.data.sampler.component is SAMPLERS["shuffle"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stage.optimizer.config.lr = 1.0  # type: ignore[misc]
    for choice in (stage.optimizer, stage.schedule, weight, spec.data.dataset, spec.data.sampler):
        assert dataclasses.is_dataclass(choice.config) and not isinstance(choice.config, dict)


def test_a_config_reads_keyword_params_by_yaml_key():
    load_all()
    cfg = TERMS["hinge_update"].configure({"lambda": 0.5})
    assert cfg.lambda_ == 0.5 and cfg["lambda"] == 0.5 and list(cfg) == ["lambda"]


def test_wide_dataclasses_are_keyword_only():
    for cls in (_model.FieldSpec, _model.DataSpec, _model.TermSpec, _model.StageSpec, _model.TrainSpec):
        assert all(f.kw_only for f in dataclasses.fields(cls)), cls.__name__
    for cls in (_model.EntrySpec, _model.InputSpec, _model.Spec):
        assert all(f.kw_only for f in dataclasses.fields(cls)), cls.__name__
    with pytest.raises(TypeError):
        _model.InputSpec((1, 28, 28), "float32")  # type: ignore[misc]


def test_training_steps_resolve_no_schedule(monkeypatch, tmp_path):
    """The schedules (learning rate, term weight) are resolved at validation; a training step
    only evaluates them."""
    from latentspec.components import Component, Registry
    from latentspec.train.trainer import Trainer

    text = vae(
        **{
            "weight: 1.0}": "weight: {schedule: linear, steps: 100}}",
            "  epochs: 30\n": "  epochs: 1\n  schedule: {schedule: cosine, steps: 50}\n",
            "split: {train: 4000, test: 1000}": "split: {train: 64}",
            "batch: 128": "batch: 16",
        }
    )
    spec = valid(text)
    trainer = Trainer(spec, str(tmp_path / "run"), device="cpu", quiet=True)
    stage = spec.train.stages[0]
    forward, plan, opt, lrs = trainer.begin_stage(stage)
    batch = trainer.train_data.batches(spec, 0)[0]
    calls = []
    monkeypatch.setattr(Component, "resolve", classmethod(lambda cls, cfg: calls.append(cls) or {}))
    monkeypatch.setattr(Registry, "__getitem__", lambda self, name: calls.append(name))
    for step in range(3):
        trainer.step(stage, forward, plan, opt, lrs, batch, step * 10, 0.0)
    assert calls == []
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0e-3 * 0.5 * (1 + math.cos(math.pi * 20 / 50)))


# -- entry kinds -------------------------------------------------------------------------------


def test_an_entry_named_after_a_kind_has_it_and_others_declare_it():
    spec = valid(vae(**{"  sample:      {in: []": "  draw:        {kind: sample, in: []"}))
    assert spec.export["encode"].kind == "encode" and spec.export["draw"].kind == "sample"
    assert spec.entry_of_kind("sample").name == "draw"
    assert spec.entry_of_kind("reconstruct") is None


def test_an_entry_without_a_kind_is_a_located_error_with_a_suggestion():
    msgs = errors(vae(**{"  decode:      {in: [z]": "  decoder:     {in: [z]"}))
    assert msgs == [
        "vae.yaml:31:3: error: $.export.decoder: entry 'decoder' needs `kind:` (what it does): its name is "
        "not a kind (did you mean 'decode'?); kinds: " + ", ".join(_sections.ENTRY_KINDS)
    ]


def test_a_kind_must_agree_with_optimize():
    msgs = errors(vae(**{"  encode:      {in: [x]": "  encode:      {kind: invert, in: [x]"}))
    assert msgs == [
        "vae.yaml:30:23: error: $.export.encode.kind: an entry of kind invert optimises a code: "
        "give it `optimize:` (the latent) and `terms:`"
    ]
    msgs = errors(
        vae(
            **{
                "  kl:    {term": "  kl2:   {term",
                "  decode:      {in: [z]": "  decode:      {in: [x], optimize: z, terms: [recon]",
            }
        )
    )
    assert any("an `optimize:` entry is of kind invert, inpaint or optimize, not decode" in m for m in msgs), msgs


# -- roles, not names --------------------------------------------------------------------------


def test_likelihood_terms_declare_reconstruction_target_and_distribution():
    load_all()
    for name in ("bernoulli_nll", "gaussian_nll", "mse", "l1", "laplacian_l1", "masked_recon", "iwae_bound"):
        roles = TERMS[name].roles
        assert (roles["reconstruction"], roles["target"]) == (0, 1), name
    assert TERMS["masked_recon"].roles["mask"] == 2
    assert TERMS["bernoulli_nll"].distribution == "bernoulli" and TERMS["gaussian_nll"].distribution == "gaussian"
    assert TERMS["mse"].distribution is None
    assert TERMS["iwae_bound"].distribution_of({"likelihood": "gaussian"}) == "gaussian"


def test_eval_finds_the_vae_by_roles_whatever_the_names():
    from latentspec.train.evaluate import find_vae

    renamed = vae(**{"x_logits": "out", "recon:": "fit:", "x_mean": "pixels"})
    parts = find_vae(valid(renamed))
    assert (parts.x, parts.logits, parts.mu, parts.likelihood) == ("x", "out", "z_mu", "bernoulli")
    # a name that looks like a reconstruction is not one: an mse on the codes is no likelihood
    parts = find_vae(valid(vae(**{"kl:    {term": "x_mean_l: {term: mse, in: [z_mu, z_mu]}\n  kl:    {term"})))
    assert parts.logits == "x_logits"


def test_a_mask_is_a_mask_by_declaration_not_by_name():
    from latentspec.export._manifest import describe_output, mask_tensors

    spec = valid(vae(**{"x_mean": "mask"}))
    assert mask_tensors(spec) == set()
    assert describe_output(spec, "mask", (1, 28, 28))["meaning"] == "image"
    with open(os.path.join(ROOT, "tests", "gallery", "glo.yaml")) as f:
        glo, _ = validate_text(f.read(), "glo.yaml")
    assert mask_tensors(glo, glo.export["inpaint"]) == {"mask"}
    assert glo.export["inpaint"].local["mask"].meaning == "mask"
