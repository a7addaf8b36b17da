"""Errors a user can act on, and the interruption SIGTERM becomes. Entry points report
them in one short message, no traceback.

This module imports nothing of the project's, so that a DVC stage which only needs to
report errors (the data stages, through digits_nn.cli) does not depend on the tracking
code: a change there must not rerun them.
"""

import signal
from typing import Any


class DigitsNNError(Exception):
    """Base class: the message says what was wrong and what is allowed."""


class ConfigError(DigitsNNError):
    """A config key has a wrong type, range or choice, or is unknown."""


class ArtifactError(DigitsNNError):
    """An input file is missing, corrupt, or does not hold what its stage expects."""


class TrackingError(DigitsNNError):
    """The MLflow store cannot be opened or written."""


class TrainingDiverged(DigitsNNError):
    """The cost became non-finite; ``partial_cost`` holds the curve up to that point."""

    def __init__(self, message: str, partial_cost, partial_classic_cost) -> None:
        super().__init__(message)
        self.partial_cost = partial_cost
        self.partial_classic_cost = partial_classic_cost


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that open runs are closed as KILLED."""


def raise_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
