"""``python -m digits_nn.compare A B``: is B better than A, or is the difference noise?

    python -m digits_nn.compare experiment=classic experiment=modern
    python -m digits_nn.compare experiment=modern peer=svc --folds 10 --repeats 3
    python -m digits_nn.compare multirun/2026-01-01/10-00-00 "experiment=modern train.l2=1.0"
    python -m digits_nn.compare rev:main rev:my-dvc-exp

A and B are each a sweep directory (``DIR#CONFIGURATION`` picks one of several), a git
revision or ``dvc exp`` name as ``rev:REV`` (its params.yaml), or Hydra overrides in one
argument. Both are measured on the same resamples; see docs/sweeps.md#comparing-two-configurations.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from digits_nn.cli import guarded


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m digits_nn.compare", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("a", help="side A: a sweep directory, rev:REV, or Hydra overrides")
    parser.add_argument("b", help="side B, as A")
    parser.add_argument("--folds", type=int, default=5, help="stratified folds k (default 5)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of the k folds (2)")
    parser.add_argument("--seed", type=int, default=0, help="the folds' shuffle and init (0)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    from digits_nn.data.files import write_json
    from digits_nn.errors import ConfigError
    from digits_nn.sweeps import comparison
    from digits_nn.tracking.store import project_root

    args = parse_args(argv)
    if args.repeats < 1:
        raise ConfigError(f"--repeats={args.repeats} is not allowed: a whole number >= 1.")
    default = comparison.fold_resamples(args.folds, args.repeats, args.seed)
    result = comparison.run((args.a, args.b), default, project_root())
    print("\n".join(result.lines()))
    if args.json is not None:
        write_json(args.json, result.details())


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    guarded(lambda: main(sys.argv[1:]))
