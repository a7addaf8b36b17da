"""What every entry point does around its work: a user error is one line and exit 2, an
interruption exits 130 or 143 even when a library caught its exception."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator

import pytest
from omegaconf import OmegaConf

from digits_nn import cli, errors
from digits_nn.errors import ArtifactError, Terminated
from digits_nn.sweeps import job


def test_a_user_error_is_one_line_and_exit_status_2(caplog) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="digits_nn"),
        pytest.raises(SystemExit) as exited,
        cli.exit_on_user_error(),
    ):
        raise ArtifactError("data/raw/digits.npz: missing.")
    assert exited.value.code == 2
    assert [r.getMessage() for r in caplog.records] == ["data/raw/digits.npz: missing."]


# Each interruption: its signal, the exception it raises, and the exit status it gives.
INTERRUPTIONS = pytest.mark.parametrize(
    ("signum", "caught", "status"),
    [(signal.SIGINT, KeyboardInterrupt, 130), (signal.SIGTERM, Terminated, 143)],
    ids=["sigint", "sigterm"],
)


@pytest.mark.parametrize(
    ("caught", "status", "line"),
    [
        (KeyboardInterrupt, 130, "interrupted (SIGINT); outputs are written whole or not at all"),
        (Terminated, 143, "terminated (SIGTERM); outputs are written whole or not at all"),
    ],
    ids=["sigint", "sigterm"],
)
def test_an_interruption_is_reported_in_one_line_naming_it(caught, status, line, caplog) -> None:
    with (
        caplog.at_level(logging.ERROR, logger="digits_nn"),
        pytest.raises(SystemExit) as exited,
        cli.exit_on_user_error(),
    ):
        raise caught
    assert exited.value.code == status
    assert [r.getMessage() for r in caplog.records] == [line]


@pytest.fixture
def entry_point_signals() -> Iterator[None]:
    """The handlers an entry point installs, with no signal recorded; restored after."""
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    errors.received.clear()
    try:
        errors.record_sigint()
        errors.raise_on_sigterm()
        yield
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        errors.received.clear()


@INTERRUPTIONS
def test_an_interruption_a_library_turned_into_its_own_error_still_exits_with_its_status(
    signum, caught, status, caplog, entry_point_signals
) -> None:
    # Ctrl-C landing while Hydra composed the next job's config: omegaconf made an
    # AttributeError of the KeyboardInterrupt, and Hydra reported it and exited 1.
    with pytest.raises(SystemExit) as exited, cli.exit_on_user_error():
        try:
            os.kill(os.getpid(), signum)
        except caught:
            raise SystemExit(1) from None  # what Hydra does with the library's error
    assert exited.value.code == status
    assert "outputs are written whole or not at all" in caplog.text

    errors.received.clear()  # without a signal, an exit status is left alone
    with pytest.raises(SystemExit) as exited, cli.exit_on_user_error():
        raise SystemExit(1)
    assert exited.value.code == 1


@INTERRUPTIONS
def test_an_interruption_a_library_swallowed_stops_the_next_job_and_the_exit_status(
    signum, caught, status, caplog, entry_point_signals
) -> None:
    # Ctrl-C as an in-process sweep moved to its next job vanished, and the sweep ran
    # to its end and exited 0.
    with contextlib.suppress(caught):  # what the library did
        os.kill(os.getpid(), signum)
    with pytest.raises(caught):  # the next job does not start
        job.run(OmegaConf.create({}))
    with pytest.raises(SystemExit) as exited:
        cli.guarded(lambda: None)  # the work "ends normally"
    assert exited.value.code == status
    assert "outputs are written whole or not at all" in caplog.text

    errors.received.clear()  # without a signal, nothing changes
    with pytest.raises(SystemExit) as exited:
        cli.guarded(lambda: None)
    assert exited.value.code == 0


def test_progress_is_shown_only_to_a_person_at_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("DVC_STAGE", raising=False)
    assert cli.interactive()
    monkeypatch.setenv("DVC_STAGE", "train")
    assert not cli.interactive()
    monkeypatch.delenv("DVC_STAGE")
    monkeypatch.setenv("CI", "true")
    assert not cli.interactive()


def test_a_stage_reads_and_validates_params_yaml_before_its_work(
    tmp_path, monkeypatch, capsys, entry_point_signals
) -> None:
    """What every DVC stage script is: ``cli.stage(main)``. It sets up logging, reads
    and validates params.yaml, runs ``main`` with it, and exits 0, or 2 with one line."""
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a fresh interpreter
    monkeypatch.setattr(root, "level", logging.WARNING)
    seen = []

    def main(cfg) -> None:
        """Train."""
        seen.append(cfg.train.alpha)

    entry = cli.stage(main)
    assert (entry.__name__, entry.__doc__) == ("main", "Train.")
    (tmp_path / cli.PARAMS_FILE).write_text("train:\n  alpha: 0.5\n")
    with pytest.raises(SystemExit) as exited:
        entry()
    assert exited.value.code == 0 and seen == [0.5]
    [handler] = root.handlers
    assert root.level == logging.INFO and handler.formatter.datefmt == "%H:%M:%S"
    assert handler.formatter._fmt == "%(asctime)s %(levelname)s [%(name)s] %(message)s"
    (tmp_path / cli.PARAMS_FILE).write_text("train:\n  alpha: -1\n")
    with pytest.raises(SystemExit) as exited:
        entry()
    assert exited.value.code == 2 and seen == [0.5]
    [line] = capsys.readouterr().err.splitlines()
    assert line.endswith(" ERROR [digits_nn] train.alpha=-1.0 is not allowed: a finite number > 0.")
