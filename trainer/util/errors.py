"""Errors the trainer raises: for bad input (the CLI prints the message and exits 1) and for
a stop by a signal (it exits 128 + the signal number)."""


class TrainerError(ValueError):
    """A problem with what the user gave (flags, data, environment), with a message saying what."""


class ConfigError(TrainerError):
    """Flags, TF_CONFIG or a saved config that cannot be used."""


class DataError(TrainerError):
    """Input files that cannot be read as the expected CSV rows."""


class OutputDirError(TrainerError):
    """An output directory that cannot be created or written."""


class Stopped(Exception):
    """The process was stopped by a signal (SIGTERM, SIGINT): the CLI prints the message and
    exits with 128 + the signal number. Not a TrainerError: nothing was wrong with the input."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
