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


class RegistryError(DigitsNNError):
    """The model registry lacks what a command needs, or holds a version it cannot use."""


class TrainingDiverged(DigitsNNError):
    """The cost became non-finite; ``partial_cost`` holds the curve up to that point."""

    def __init__(self, message: str, partial_cost, partial_classic_cost) -> None:
        super().__init__(message)
        self.partial_cost = partial_cost
        self.partial_classic_cost = partial_classic_cost


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that open runs are closed as KILLED."""


#: The interruptions this process has received. A library may catch the exception a
#: signal raises and report its own error instead (Ctrl-C while Hydra composes a job's
#: config surfaces as an omegaconf AttributeError, exit 1); the entry point reads this
#: record to exit with the interruption's status all the same.
received: set[int] = set()


def raise_if_interrupted() -> None:
    """Raise the exception of an interruption this process received and then lost.

    A signal handler may run inside a callback whose exceptions Python drops (it reports
    them as "Exception ignored"), or inside a library that catches them and carries on;
    Ctrl-C would then do nothing. Called where work is about to begin.
    """
    if signal.SIGTERM in received:
        raise Terminated()
    if signal.SIGINT in received:
        raise KeyboardInterrupt


def raise_on_sigterm() -> None:
    def on_sigterm(signum: int, frame: Any) -> None:
        received.add(signum)
        raise Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)


def record_sigint() -> None:
    """Keep Ctrl-C's KeyboardInterrupt, and remember that it came (see ``received``)."""

    def on_sigint(signum: int, frame: Any) -> None:
        received.add(signum)
        raise KeyboardInterrupt

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, on_sigint)
