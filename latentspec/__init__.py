"""latentspec: declarative latent-variable models — validate, compile, train, export.

Importing the package imports no torch; the compiler, trainer and exporter import it lazily.
"""

__version__ = "0.1.0"
