"""The champion gate: ``python -m digits_nn.promote [key=value ...]``.

Reads ``params.yaml`` (the store in ``tracking``, the thresholds in ``promote``), with
overrides such as ``promote.min_gain=0.005``, and runs
:func:`digits_nn.sweeps.champion.gate`. Exit status 0 when the challenger becomes (or
already is) the champion, 1 when the gate refuses it (nothing is changed), 2 for a user
error (no challenger, no store, a bad value).
"""

from __future__ import annotations

import logging
import sys

from digits_nn import cli, config
from digits_nn.errors import TrackingError

EXIT_REFUSED = 1

log = logging.getLogger("digits_nn")


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # MLflow's evaluation speaks at length; the gate's verdict is the one line that counts.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    cli.guarded(lambda: promote(argv))


def promote(argv: list[str]) -> None:
    from digits_nn.sweeps.champion import gate
    from digits_nn.tracking.store import open_store

    cfg = config.load(cli.PARAMS_FILE, argv)
    store = open_store(cfg.tracking)
    if store is None:
        raise TrackingError("tracking.enabled=false: the gate needs the MLflow store.")
    verdict = gate(store, cfg.promote)
    if not verdict.approved:
        log.error("%s", verdict.line)
        sys.exit(EXIT_REFUSED)
    log.info("%s", verdict.line)


if __name__ == "__main__":
    main(sys.argv[1:])
