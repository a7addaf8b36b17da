"""Credentials in URIs: where they are, and the same text without them.

A URI such as ``http://alice:s3cret@host`` carries a password. The project writes none:
a config holding one is refused (:func:`digits_nn.config.parse`, and before Hydra copies
the config into a run's folder, :class:`digits_nn.pipeline.app.CredentialsCheck`), and a
URI taken from the environment (``MLFLOW_TRACKING_URI``) is redacted from every param,
tag, file and message (:mod:`digits_nn.tracking.redaction`).

Imports only the standard library: the config, which every stage reads, uses it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# The userinfo of a URI (scheme://user:password@host), which may hold a secret. It runs
# to the *last* '@' before the host ends (a '/', '?', '#' or a character no URI holds):
# clients split it there, so a password may hold '@' and ':' of its own.
USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#\s\"<>\\^`{|}]*)@"
)


def redact(text: str) -> str:
    """``text`` with the password (or token) of every URI in it replaced by ``***``."""

    def hide(match: re.Match[str]) -> str:
        # As the client reads it: the user name up to the first ':', the password after.
        user, has_password, _ = match["userinfo"].partition(":")
        return (
            f"{match['scheme']}{user}:***@" if user and has_password else f"{match['scheme']}***@"
        )

    return USERINFO.sub(hide, text)


def holds_credentials(text: str) -> bool:
    return redact(text) != text


def found_in(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """``(key, text)`` for every string in nested mappings and lists that holds
    credentials; a key is dotted, with ``[i]`` for a list's items."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from found_in(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from found_in(value, f"{key}[{index}]")
    elif isinstance(node, str) and holds_credentials(node):
        yield key, node
