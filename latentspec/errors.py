"""Errors that are the user's to fix: the CLI prints them in one line, never a traceback."""


class UserError(Exception):
    """A mistake in the input (spec, data, run directory, bundle, command line)."""


class DataError(UserError):
    """Data that cannot be loaded as the spec says (missing file, wrong shape)."""


class RunError(UserError):
    """A run directory that is missing, incomplete, or does not fit the command."""


class ExportError(UserError):
    """An entry point that cannot be exported, or a bundle that failed verification."""
