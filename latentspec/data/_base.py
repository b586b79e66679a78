"""Dataset components: torch-free descriptions of the arrays a dataset provides."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import numpy as np

from latentspec.components import Component


@dataclasses.dataclass(frozen=True)
class ArrayInfo:
    """What one array of a dataset holds, per item (the leading N axis is left out).

    ``kind`` is one of: image (H, W) or (C, H, W); mask; label (integer class);
    factor (a continuous or categorical generating factor); joints; index.
    """

    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: "uint8", "float32", "int64", ...
    kind: str
    range: tuple[float, float] | None = None  # value range of the raw array
    classes: int | None = None  # number of classes, for integer labels / categorical factors
    names: tuple[str, ...] | None = None  # class names, for categorical factors
    doc: str = ""


class DatasetSpec(Component, abc.ABC):
    """Base class of datasets. Subclasses register with ``@DATASETS.register(name)``."""

    #: True for datasets rendered from factors (they implement render / load_grouped).
    procedural: ClassVar[bool] = False

    @abc.abstractmethod
    def arrays(self, cfg: dict) -> dict[str, ArrayInfo]:
        """The arrays ``load`` returns, without loading them (cheap; used by validation).

        ``cfg`` holds the dataset's parameters with defaults resolved.
        """

    @abc.abstractmethod
    def load(self, cfg: dict) -> dict[str, np.ndarray]:
        """All arrays, each with the item axis first, all of the same length."""

    def metadata(self, cfg: dict) -> dict[str, Any]:
        """Extra facts recorded in run directories and bundles (factor ranges, credits)."""
        return {}
