"""The registries, one per component kind. Entries register themselves on import."""

from latentspec.components._registry import Registry

MODULES = Registry("module", "module", "Neural modules with parameters (nodes with `module:`).")
OPS = Registry("op", "op", "Tensor operations (nodes with `op:`).")
TERMS = Registry("term", "term", "Objective terms (entries of `objective:`).")
SAMPLERS = Registry("sampler", "sampler", "What goes into a batch (`data.sampler`).")
DATASETS = Registry("dataset", "dataset", "Built-in datasets and loaders (`data.dataset`).")
OPTIMIZERS = Registry("optimizer", "name", "Optimizers (`train.optimizer.name`).")
SCHEDULES = Registry("schedule", "schedule", "Learning-rate and weight schedules.")
EXPORTS = Registry("export target", "format", "Export formats (`latentspec export --format`).")

TRACKERS = Registry("tracker", "track", "Experiment-tracking sinks (`train.track`, `latentspec train --track`).")

ALL = (MODULES, OPS, TERMS, SAMPLERS, DATASETS, OPTIMIZERS, SCHEDULES, EXPORTS, TRACKERS)
