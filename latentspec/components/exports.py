"""Export targets (`latentspec export --format`). Descriptors only."""

from __future__ import annotations

from latentspec.components._kinds import EXPORTS
from latentspec.components._registry import Component, Param

#: The ONNX opset an export uses unless told otherwise (`--opset`, ``export_model(opset=)``):
#: the one definition; the CLI, the Python API and the schema/docs all read it from here.
DEFAULT_OPSET = 18


@EXPORTS.register("onnx")
class OnnxTarget(Component):
    """One single-file ONNX graph per export entry point (always written)."""

    params = (Param("opset", "int", DEFAULT_OPSET, "ONNX opset; checked in the saved model", minimum=13),)


@EXPORTS.register("pt2")
class Pt2Target(Component):
    """`model.pt2`: the training graph as a torch.export program."""


@EXPORTS.register("triton")
class TritonTarget(Component):
    """A Triton Inference Server model repository (`triton/<entry>/config.pbtxt`)."""

    params = (Param("max_batch_size", "int", 64, minimum=1),)


@EXPORTS.register("torchscript")
class TorchScriptTarget(Component):
    """Legacy TorchScript per entry point (deprecated in torch; opt in explicitly)."""
