"""Optimizers and schedules. Descriptors only; torch is imported when one is built."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from latentspec.components._kinds import OPTIMIZERS, SCHEDULES
from latentspec.components._registry import Component, Param

_GROUPS = Param(
    "groups",
    "mapping",
    None,
    "per node/latent settings, e.g. {gen: {lr: 1.0}, z: {lr: 10.0}}; unnamed parameters use the defaults",
    schema={
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {
                "lr": {"type": "number", "exclusiveMinimum": 0},
                "weight_decay": {"type": "number", "minimum": 0},
            },
            "additionalProperties": False,
        },
    },
)
_LR = Param("lr", "float", 1.0e-3, "learning rate", exclusive_minimum=0, maximum=100.0)
_WD = Param("weight_decay", "float", 0.0, "L2 weight decay", minimum=0, maximum=10.0)


class OptimizerComponent(Component):
    torch_name = ""

    def kwargs(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """torch.optim keyword arguments from the typed config (``groups`` is applied per group)."""
        return {p.name: cfg[p.name] for p in self.params if p.name not in ("name", "groups")}

    def build(self, param_groups: list[dict], cfg: Mapping[str, Any]) -> Any:
        from latentspec.nn import optim

        kw = self.kwargs(cfg)
        if "betas" in kw:
            kw["betas"] = tuple(kw["betas"])
        return optim.optimizer(self.torch_name, param_groups, kw)


@OPTIMIZERS.register("adam")
class Adam(OptimizerComponent):
    """Adam (Kingma & Ba, 2015)."""

    torch_name = "Adam"
    params = (
        _LR,
        Param("betas", "floats", [0.9, 0.999], minimum=0, maximum=1),
        Param("eps", "float", 1.0e-8, exclusive_minimum=0, maximum=1),
        _WD,
        _GROUPS,
    )


@OPTIMIZERS.register("adamw")
class AdamW(OptimizerComponent):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019)."""

    torch_name = "AdamW"
    params = (
        _LR,
        Param("betas", "floats", [0.9, 0.999], minimum=0, maximum=1),
        Param("eps", "float", 1.0e-8, exclusive_minimum=0, maximum=1),
        Param("weight_decay", "float", 0.01, minimum=0, maximum=10.0),
        _GROUPS,
    )


@OPTIMIZERS.register("sgd")
class SGD(OptimizerComponent):
    """Stochastic gradient descent with optional momentum."""

    torch_name = "SGD"
    params = (
        _LR,
        Param("momentum", "float", 0.0, minimum=0, maximum=1),
        Param("nesterov", "bool", False),
        _WD,
        _GROUPS,
    )


@OPTIMIZERS.register("rmsprop")
class RMSprop(OptimizerComponent):
    """RMSprop (Tieleman & Hinton), as used by DC-IGN."""

    torch_name = "RMSprop"
    params = (
        _LR,
        Param("alpha", "float", 0.99, minimum=0, maximum=1),
        Param("eps", "float", 1.0e-8, exclusive_minimum=0, maximum=1),
        Param("momentum", "float", 0.0, minimum=0, maximum=1),
        _WD,
        _GROUPS,
    )


@OPTIMIZERS.register("adagrad")
class Adagrad(OptimizerComponent):
    """Adagrad (Duchi et al.), as in Kingma & Welling's VAE experiments."""

    torch_name = "Adagrad"
    params = (_LR, Param("eps", "float", 1.0e-10, exclusive_minimum=0, maximum=1), _WD, _GROUPS)


class ScheduleComponent(Component):
    """A function of progress (step, or fractional epoch) to a multiplier or a value."""

    def value(self, cfg: Mapping[str, Any], step: int, epoch: float) -> float:
        raise TypeError(f"schedule {self.name!r} has no value")

    @staticmethod
    def _progress(cfg: Mapping[str, Any], step: int, epoch: float) -> float:
        if cfg.get("steps"):
            return min(1.0, step / cfg["steps"])
        if cfg.get("epochs"):
            return min(1.0, epoch / cfg["epochs"])
        return 1.0


_SPAN = (
    Param("steps", "int", None, "length in optimizer steps", minimum=1),
    Param("epochs", "float", None, "length in epochs (fractional allowed)", minimum=0),
)


@SCHEDULES.register("constant")
class Constant(ScheduleComponent):
    """A constant value."""

    params = (Param("value", "float", 1.0),)

    def value(self, cfg: Mapping[str, Any], step: int, epoch: float) -> float:
        return float(cfg["value"])


@SCHEDULES.register("linear")
class Linear(ScheduleComponent):
    """Linear ramp from `start` to `end` over `steps` or `epochs` (e.g. KL warm-up), then `end`."""

    params = (Param("start", "float", 0.0), Param("end", "float", 1.0), *_SPAN)

    def value(self, cfg: Mapping[str, Any], step: int, epoch: float) -> float:
        t = self._progress(cfg, step, epoch)
        return cfg["start"] + t * (cfg["end"] - cfg["start"])


@SCHEDULES.register("cosine")
class Cosine(ScheduleComponent):
    """Cosine curve from `start` to `end` over `steps` or `epochs`."""

    params = (Param("start", "float", 1.0), Param("end", "float", 0.0), *_SPAN)

    def value(self, cfg: Mapping[str, Any], step: int, epoch: float) -> float:
        import math

        t = self._progress(cfg, step, epoch)
        return cfg["end"] + 0.5 * (cfg["start"] - cfg["end"]) * (1 + math.cos(math.pi * t))


@SCHEDULES.register("step")
class Step(ScheduleComponent):
    """Multiply by `gamma` every `every` epochs."""

    params = (Param("start", "float", 1.0), Param("gamma", "float", 0.1), Param("every", "int", 10, minimum=1))

    def value(self, cfg: Mapping[str, Any], step: int, epoch: float) -> float:
        return cfg["start"] * cfg["gamma"] ** int(epoch // cfg["every"])
