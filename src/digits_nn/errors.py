"""Errors a user can act on. Entry points report them in one short message, no traceback."""


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
