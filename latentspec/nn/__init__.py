"""Torch implementations of the registered components.

``latentspec.components`` declares each component torch-free; its ``build`` imports the
matching class from here (``modules``, ``ops``, ``terms``).
"""
