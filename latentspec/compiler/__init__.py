"""Spec -> torch.fx GraphModule; entry-point slicing."""

from latentspec.compiler._compile import CompiledModel, CompileError, LoopModule, compile_spec
from latentspec.graph import Placeholder, Plan, plan  # planning lives with the graph

__all__ = ["CompileError", "CompiledModel", "LoopModule", "Placeholder", "Plan", "compile_spec", "plan"]
