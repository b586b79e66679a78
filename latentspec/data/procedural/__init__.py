"""Procedural datasets with ground-truth factors: ``shapes``, ``hands`` and ``faces``.

Importing this package registers them in ``DATASETS``. Each module also offers
``render(**factors)`` (one item, byte-identical to that item of ``load``) and
``render_batch(factors, **options)``.
"""

from latentspec.data.procedural import faces, hands, shapes
from latentspec.data.procedural.faces import Faces
from latentspec.data.procedural.hands import Hands
from latentspec.data.procedural.shapes import Shapes

__all__ = ["Faces", "Hands", "Shapes", "faces", "hands", "shapes"]
