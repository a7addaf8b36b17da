"""Regenerate ``params.yaml`` from ``conf/``: ``python -m digits_nn.compose [overrides]``.

It calls the function ``dvc exp run`` itself uses, so the file is byte for byte what
DVC would write.
"""

from __future__ import annotations

import sys
from pathlib import Path

from dvc.utils.hydra import compose_and_dump


def main(argv: list[str]) -> None:
    root = Path.cwd()
    compose_and_dump(root / "params.yaml", str(root / "conf"), None, "config", "", argv)


if __name__ == "__main__":
    main(sys.argv[1:])
