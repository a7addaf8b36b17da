"""Issue 15's mutations, applied one at a time to a scratch copy, against the fast suite.

Each mutation is a one-line behaviour change that once left every test green. This
script copies the working tree (tracked and untracked files, minus ignored ones) to a
temporary folder, applies one mutation there, runs ``pytest -m 'not slow'`` on the copy
and prints which tests failed. Every mutation must be killed: the script exits 1 if one
survives, and 2 if one no longer applies (its line changed: update it here).

    python benchmarks/hand_mutations.py                 # all, each stopping at its first failure
    python benchmarks/hand_mutations.py 5 12 scaling    # only these
    python benchmarks/hand_mutations.py --check         # only that each still applies
    python benchmarks/hand_mutations.py 4 -- tests/unit/core/test_optimizers.py   # chosen tests

The last three are behaviours the issue found guarded only by slow tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    key: str
    what: str
    file: str
    before: str
    after: str


MUTATIONS = [
    Mutation(
        "1",
        "the classic kernel is taken when train.l2 > 0",
        "src/digits_nn/core/training.py",
        "            and self.l2 == 0.0\n",
        "",
    ),
    Mutation(
        "2",
        "the classic kernel is taken with train.schedule=inverse_time",
        "src/digits_nn/core/training.py",
        '            and self.schedule == "constant"\n',
        "",
    ),
    Mutation(
        "3",
        "the general path ignores the inverse-time schedule",
        "src/digits_nn/core/trainer.py",
        "rate = options.rate(t)",
        "rate = options.alpha",
    ),
    Mutation(
        "4",
        "the sign of Nesterov's look-ahead term is flipped",
        "src/digits_nn/core/optimizers.py",
        "P += (1.0 + mu) * V - mu * previous",
        "P += (1.0 + mu) * V + mu * previous",
    ),
    # Mutation 5, one line per key since each key has its own check.
    Mutation(
        "5",
        "train.l2 accepts NaN and infinity",
        "src/digits_nn/config.py",
        "if not (math.isfinite(train.l2) and train.l2 >= 0):",
        "if train.l2 < 0:",
    ),
    Mutation(
        "5-decay",
        "train.decay accepts NaN and infinity",
        "src/digits_nn/config.py",
        "if train.decay is not None and not (math.isfinite(train.decay) and train.decay > 0):",
        "if train.decay is not None and train.decay <= 0:",
    ),
    Mutation(
        "6",
        "an atomically written file keeps mkstemp's 0600 mode",
        "src/digits_nn/data/files.py",
        "    os.chmod(tmp, 0o666 & ~_UMASK)\n",
        "",
    ),
    Mutation(
        "7",
        "pipelines/run.py splits the data with seed 0 whatever seed says",
        "src/digits_nn/pipeline/prepared.py",
        "cfg.data.test_size, cfg.seed)",
        "cfg.data.test_size, 0)",
    ),
    Mutation(
        "8",
        "the validation rows are not stratified",
        "src/digits_nn/data/steps.py",
        "random_state=seed, stratify=labels",
        "random_state=seed",
    ),
    Mutation(
        "9",
        "a sweep's objective is the test accuracy even with validation rows",
        "src/digits_nn/sweeps/job.py",
        'value = first.get("validation_accuracy")',
        "value = None",
    ),
    Mutation(
        "10",
        "the parent run's failed_jobs metric is always 0",
        "src/digits_nn/sweeps/summary.py",
        '"failed_jobs": len(rows) - len(finished),',
        '"failed_jobs": 0,',
    ),
    Mutation(
        "11",
        "the parent run's best_test_accuracy is the minimum",
        "src/digits_nn/sweeps/summary.py",
        '"best_test_accuracy": max(',
        '"best_test_accuracy": min(',
    ),
    Mutation(
        "12",
        "writes go straight to the target file",
        "src/digits_nn/data/files.py",
        "        yield Path(tmp)\n        os.replace(tmp, path)\n",
        "        yield path\n",
    ),
    # Behaviours the issue found guarded only by slow tests.
    Mutation(
        "killed",
        "an interrupted MLflow run is closed as FAILED, not KILLED",
        "src/digits_nn/tracking/runs.py",
        'client.set_terminated(run_id, status="KILLED")',
        'client.set_terminated(run_id, status="FAILED")',
    ),
    Mutation(
        "error-tag",
        "a failed run loses its error tag",
        "src/digits_nn/tracking/runs.py",
        'store.client.set_tag(run_id, "error", str(error)[:5000] or type(error).__name__)',
        "pass",
    ),
    Mutation(
        "scaling",
        "the served model skips the fitted scaling",
        "src/digits_nn/serving.py",
        "predict(self.network, (pixels - self.mean) / self.scale)",
        "predict(self.network, pixels)",
    ),
]


def working_tree(destination: Path) -> Path:
    """The files git would see (tracked and untracked, not ignored), copied."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def apply(mutation: Mutation, tree: Path) -> None:
    path = tree / mutation.file
    text = path.read_text()
    found = text.count(mutation.before)
    if found != 1:
        raise LookupError(
            f"mutation {mutation.key}: {mutation.file} holds its line {found} times"
            f" (expected once): {mutation.before.strip()!r}"
        )
    path.write_text(text.replace(mutation.before, mutation.after))


def check(mutations: list[Mutation]) -> int:
    """Whether every mutation still applies to the working tree, without running tests."""
    stale = 0
    for mutation in mutations:
        found = (ROOT / mutation.file).read_text().count(mutation.before)
        stale += found != 1
        verdict = "applies" if found == 1 else f"STALE (line found {found} times)"
        print(f"{mutation.key:>9} {verdict}  {mutation.file}")
    return 2 if stale else 0


def run_suite(tree: Path, pytest_args: list[str]) -> tuple[int, list[str], float]:
    """The fast suite on ``tree``, importing the package from the copy (and so do the
    subprocesses the tests start: PYTHONPATH comes before the editable install)."""
    env = os.environ | {"PYTHONPATH": str(tree / "src")}
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"]
    started = time.perf_counter()
    result = subprocess.run(
        [*command, *pytest_args], cwd=tree, env=env, capture_output=True, text=True
    )
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", result.stdout, flags=re.MULTILINE)
    return result.returncode, failed, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keys", nargs="*", help="mutations to apply (default all)")
    parser.add_argument(
        "--check", action="store_true", help="only check that each line is found once"
    )
    arguments = sys.argv[1:]
    split = arguments.index("--") if "--" in arguments else len(arguments)
    ours, pytest_args = arguments[:split], arguments[split + 1 :]
    options = parser.parse_args(ours)
    chosen = [m for m in MUTATIONS if not options.keys or m.key in options.keys]
    pytest_args = pytest_args or ["-x"]  # after --: the tests to run, pytest's options
    if options.check:
        return check(chosen)
    survivors = 0
    for mutation in chosen:
        with tempfile.TemporaryDirectory(prefix=f"mutation-{mutation.key}-") as scratch:
            tree = working_tree(Path(scratch))
            try:
                apply(mutation, tree)
            except LookupError as error:
                print(error, file=sys.stderr)
                return 2
            status, failed, seconds = run_suite(tree, pytest_args)
        verdict = "killed" if status != 0 else "SURVIVED"
        survivors += status == 0
        print(f"{mutation.key:>9} {verdict:<8} {seconds:5.0f} s  {mutation.what}")
        for test in failed:
            print(f"      {test}")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
