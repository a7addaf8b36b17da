"""What every entry point does around its work: logging, signals and exit codes.

A user error (bad config, bad artifact, diverged training, broken store) is reported
once, as one short message without a traceback, with exit status 2. Ctrl-C exits with
130 and SIGTERM with 143, after the open MLflow run has been closed as KILLED.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn

from digits_nn import config, errors
from digits_nn.config import Config
from digits_nn.errors import DigitsNNError, Terminated, raise_on_sigterm, record_sigint

PARAMS_FILE = "params.yaml"
EXIT_USER_ERROR, EXIT_SIGINT, EXIT_SIGTERM = 2, 130, 143

log = logging.getLogger("digits_nn")


# How each interruption is reported: its exit status and its words.
INTERRUPTIONS = {
    signal.SIGINT: (EXIT_SIGINT, "interrupted (SIGINT)"),
    signal.SIGTERM: (EXIT_SIGTERM, "terminated (SIGTERM)"),
}


def _exit_interrupted(signum: int) -> NoReturn:
    status, what = INTERRUPTIONS[signum]
    log.error("%s; outputs are written whole or not at all", what)
    sys.exit(status)


@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn a user error or an interruption into its message and exit status."""
    try:
        yield
    except DigitsNNError as error:
        log.error("%s", error)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        _exit_interrupted(signal.SIGINT)
    except Terminated:
        _exit_interrupted(signal.SIGTERM)
    except SystemExit as exiting:
        # Hydra exits 1 on any error, including the one a library made of the signal's
        # exception: an interrupted process still says so, with the signal's status.
        statuses = {status for status, _ in INTERRUPTIONS.values()}
        received = [signum for signum in INTERRUPTIONS if signum in errors.received]
        if received and exiting.code not in statuses:
            _exit_interrupted(received[0])
        raise


def prepare_exit() -> None:
    """Make SIGTERM close the open MLflow run, remember Ctrl-C (see errors.received), and
    make the interpreter's teardown quick.

    With mlflow, sklearn and matplotlib loaded, the teardown would spend a noticeable
    pause in a last garbage collection over objects about to vanish with the process. Freezing
    them leaves them out of it. Registered first, the freeze runs after every other exit
    handler (logging's flush, MLflow's), which all still run.
    """
    atexit.register(gc.freeze)
    raise_on_sigterm()
    record_sigint()


def guarded(work: Callable[[], None]) -> NoReturn:
    """Run ``work`` and exit with the status that says how it ended."""
    prepare_exit()
    with exit_on_user_error():
        work()
        # The work ended normally although a signal came: its exception was dropped
        # (raised in a callback, or caught by a library).
        errors.raise_if_interrupted()
    sys.exit(0)


def stage(main: Callable[[Config], None]) -> Callable[[], NoReturn]:
    """Make ``main(config)`` a DVC stage: it reads and validates ``params.yaml`` first."""

    @functools.wraps(main)
    def entry() -> NoReturn:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
            datefmt="%H:%M:%S",
        )
        guarded(lambda: main(config.load(PARAMS_FILE)))

    return entry


def interactive() -> bool:
    """Show progress bars only to a person at a terminal: not in CI, not under DVC."""
    return sys.stderr.isatty() and not os.environ.get("CI") and "DVC_STAGE" not in os.environ
