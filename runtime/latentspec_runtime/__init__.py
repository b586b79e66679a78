"""latentspec-runtime: run latentspec bundles with numpy and onnxruntime, without PyTorch.

>>> from latentspec_runtime import Bundle
>>> bundle = Bundle.load("vae_mnist.bundle")  # doctest: +SKIP
>>> bundle.sample(16, seed=0).shape  # doctest: +SKIP
(16, 1, 28, 28)
"""

from ._bundle import Bundle
from ._groups import Calibration, CalibrationWarning, LatentGroup
from ._manifest import BundleError, InputError

__version__ = "0.1.0"

__all__ = [
    "Bundle",
    "BundleError",
    "Calibration",
    "CalibrationWarning",
    "InputError",
    "LatentGroup",
    "__version__",
]
