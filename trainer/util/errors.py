"""Errors the trainer raises for bad input: the CLI prints their message and exits 1."""


class TrainerError(ValueError):
    """A problem with what the user gave (flags, data, environment), with a message saying what."""


class ConfigError(TrainerError):
    """Flags, TF_CONFIG or a saved config that cannot be used."""


class DataError(TrainerError):
    """Input files that cannot be read as the expected CSV rows."""


class OutputDirError(TrainerError):
    """An output directory that cannot be created or written."""
