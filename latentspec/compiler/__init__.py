"""Spec -> torch.fx GraphModule; entry-point slicing."""

from latentspec.compiler._compile import CompiledModel, CompileError, LoopModule, compile_spec
from latentspec.compiler._plan import Placeholder, Plan, plan

__all__ = ["CompileError", "CompiledModel", "LoopModule", "Placeholder", "Plan", "compile_spec", "plan"]
