"""`make mutate`: mutation testing of the core modules with mutmut, reported in docs/mutation.md.

mutmut changes one small thing at a time in the modules below (a ``<`` for a ``<=``, a
constant, a dropped argument) and runs the fast suite's tests that reach the changed
function against each such mutant. A mutant the tests pass on has *survived*: either a
test is missing, or the change cannot alter any behaviour (it is *equivalent*), which
docs/mutation-equivalents.yaml then says, keyed by the mutant's stable id
``module.function: removed line => added line``.

    python benchmarks/mutation_report.py --run     # mutmut run over the scope, then the report
    python benchmarks/mutation_report.py --run --fresh   # the same, forgetting every result
    python benchmarks/mutation_report.py           # the report from the last run's results
    python benchmarks/mutation_report.py --skeleton   # YAML entries for unexplained survivors

On demand, like the benchmarks, never in CI. mutmut keeps its results in mutants/. A run
tests every mutant without a result (new, or in a function that changed), then tests
again every mutant in scope that was not killed, since new tests may kill it now. A kill
stands while its function is unchanged; only removing or weakening a test can undo one,
and ``--fresh`` starts from nothing (hours on two cores for the whole package).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = [sys.executable, "-m", "mutmut"]
REPORT = ROOT / "docs" / "mutation.md"
EQUIVALENTS = ROOT / "docs" / "mutation-equivalents.yaml"
TIMING = ROOT / "mutants" / "mutation-run.json"

# The scope, by area: mutmut mutates whole files (pyproject.toml's only_mutate: the whole
# package but the local stack); these globs over its mutant names pick the functions that
# are tested and reported. A mutant belongs to the first area with a glob that matches it,
# so the narrower globs come first.
SCOPE = {
    "maths": ["digits_nn.core.*"],
    "configuration": ["digits_nn.config.*", "digits_nn.credentials.*"],
    "training options": [
        "digits_nn.pipeline.fit.*",
        "digits_nn.data.steps.x_validation_rows__mutmut_*",
        "digits_nn.data.steps.x_without_validation__mutmut_*",
    ],
    "artifacts": [
        "digits_nn.data.files.*",
        "digits_nn.data.artifacts.*",
        "digits_nn.data.model_file.*",
        "digits_nn.pipeline.outputs.x_write_cost_curve__mutmut_*",
        "digits_nn.pipeline.outputs.x_read_cost_curve__mutmut_*",
    ],
    "data steps": ["digits_nn.data.*"],
    "pipeline steps": ["digits_nn.pipeline.*"],
    "tracking": ["digits_nn.tracking.*"],
    "sweep summary": ["digits_nn.sweeps.summary.*"],
    "sweeps": ["digits_nn.sweeps.*"],
    "entry points": [
        "digits_nn.cli.*",
        "digits_nn.compose.*",
        "digits_nn.errors.*",
        "digits_nn.serving.*",
    ],
}
# Every survivor must be killed by a test or explained as equivalent, in every area.
MUST_EXPLAIN = tuple(SCOPE)
# mutmut's statuses, as the table names them. "no tests": no fast test reaches the
# function, so its mutants cannot be tested at all.
STATUSES = {
    "killed": "killed",
    "survived": "survived",
    "timeout": "timeout",
    "no tests": "no fast test",
    "not checked": "not checked",
}


@dataclass(frozen=True)
class Mutant:
    name: str  # mutmut's, e.g. digits_nn.core.kernel.x_gradient_descent__mutmut_12
    status: str

    @property
    def module(self) -> str:
        """The module's dotted path: the parts before the mangled function name (``x_``
        for a function, ``xǁ`` for a method)."""
        parts = self.name.split(".")
        first = next(i for i, part in enumerate(parts) if part.startswith(("x_", "xǁ")))
        return ".".join(parts[:first])

    @property
    def function(self) -> str:
        """``digits_nn.core.kernel.Workspace.descend`` from mutmut's mangled name."""
        mangled = re.sub(r"__mutmut_\d+$", "", self.name[len(self.module) + 1 :])
        if mangled.startswith("xǁ"):  # a method: xǁClassǁname
            return f"{self.module}.{'.'.join(mangled.split('ǁ')[1:])}"
        return f"{self.module}.{mangled.removeprefix('x_')}"


def area_of(name: str) -> str | None:
    return next(
        (area for area, globs in SCOPE.items() if any(fnmatch.fnmatch(name, g) for g in globs)),
        None,
    )


def run_mutmut(max_children: int, fresh: bool) -> float:
    """mutmut run over the scope; returns the wall time in seconds."""
    if fresh:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    started, cpu_before = time.perf_counter(), _children_cpu()
    workers = ["--max-children", str(max_children)]
    # Without names mutmut tests only the mutants that have no result yet.
    subprocess.run([*MUTMUT, "run", *workers], cwd=ROOT)
    # Named, it tests them again whatever their result.
    retest = [m.name for m in read_results() if m.status != "killed"]
    if retest:
        subprocess.run([*MUTMUT, "run", *workers, *retest], cwd=ROOT)
    seconds = time.perf_counter() - started
    timing = {"seconds": round(seconds), "cpu_seconds": round(_children_cpu() - cpu_before)}
    TIMING.write_text(json.dumps({**timing, "max_children": max_children}))
    return seconds


def _children_cpu() -> float:
    """CPU seconds (user and system) of the finished child processes, mutmut's included."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_results() -> list[Mutant]:
    """Every mutant in scope with its status, from ``mutmut results --all true``."""
    listed = subprocess.run(
        [*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    mutants = []
    for line in listed.splitlines():
        name, _, status = line.strip().partition(": ")
        if status and area_of(name):
            mutants.append(Mutant(name, status))
    return mutants


def stable_id(mutant: Mutant) -> str:
    """``function: removed => added``, from mutmut's diff: it survives edits elsewhere in
    the file, unlike mutmut's numbering."""
    # mutmut's own diff, in this process: `mutmut show` per mutant takes seconds each.
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    source = f"src/{mutant.module.replace('.', '/')}.py"
    diff = get_diff_for_mutant(mutant.name, path=source).splitlines()
    removed = [line[1:].strip() for line in diff if line.startswith("-") and line[:3] != "---"]
    added = [line[1:].strip() for line in diff if line.startswith("+") and line[:3] != "+++"]
    return f"{mutant.function}: {' '.join(removed)} => {' '.join(added)}"


def counts_table(mutants: list[Mutant]) -> list[str]:
    rows = ["| area | module | mutants | " + " | ".join(STATUSES.values()) + " | other |"]
    rows.append("|---" * (4 + len(STATUSES)) + "|")
    for area in SCOPE:
        by_module: dict[str, Counter] = {}
        for m in mutants:
            if area_of(m.name) == area:
                by_module.setdefault(m.module, Counter())[m.status] += 1
        for module, count in sorted(by_module.items()):
            other = sum(n for status, n in count.items() if status not in STATUSES)
            cells = [str(count[s]) for s in STATUSES]
            rows.append(f"| {area} | {module} | {count.total()} | {' | '.join(cells)} | {other} |")
    total = Counter(m.status for m in mutants)
    other = sum(n for status, n in total.items() if status not in STATUSES)
    cells = [str(total[s]) for s in STATUSES]
    rows.append(f"| **all** | | {total.total()} | {' | '.join(cells)} | {other} |")
    return rows


def write_report(mutants: list[Mutant], explained: dict[str, str]) -> list[str]:
    """docs/mutation.md; returns the ids of the survivors that must be explained but are not."""
    timing = json.loads(TIMING.read_text()) if TIMING.is_file() else {}
    lines = [
        "# Mutation testing",
        "",
        "Generated by `make mutate` (`benchmarks/mutation_report.py`); do not edit by hand.",
        f"Tool: mutmut {metadata.version('mutmut')}, against `pytest -m 'not slow'`, each mutant",
        "tested by the fast-suite tests that reach its function.",
    ]
    if timing:
        cpu = timing.get("cpu_seconds")
        lines.append(
            f"Last `mutmut run`: {timing['seconds'] / 60:.0f} min wall time"
            + (f" and {cpu / 60:.0f} min of CPU" if cpu is not None else "")
            + f" with {timing['max_children']} worker{'s' if timing['max_children'] > 1 else ''}"
            + " (kills of unchanged functions are kept; the rest tested again)."
        )
        if timing.get("note"):
            lines.append(timing["note"])
    lines += ["", *counts_table(mutants), ""]
    lines += [
        "Why mutmut (measured on 2026-11-30 on two cores): cosmic-ray 8.7 finds 3170 mutants",
        "in the scope of then and runs the whole test command for each; the fast suite takes",
        "about 40 s of CPU, so about 35 CPU-hours. mutmut 3.8 forks each mutant from a process",
        "that has already imported everything and runs only the tests that reach the mutated",
        "function: that scope, 3089 mutants, took 34 min of CPU (21 min on two workers, on a",
        "clean clone). `not checked` counts mutants not yet run: an interrupted run resumes",
        "where it stopped.",
        "",
    ]
    unreached = Counter(m.function for m in mutants if m.status == "no tests")
    if unreached:
        lines += [
            "`no fast test`: no test of the fast suite reaches these functions, so mutmut cannot",
            "test their mutants, and each counts as unexplained; mutants per function:",
            "",
            *[f"- `{name}`: {n}" for name, n in unreached.most_common()],
            "",
        ]
    lines += [
        "A survivor is a change no test noticed. Each is either killed by a new test or",
        "explained below as equivalent (docs/mutation-equivalents.yaml), in every area; a",
        "function no fast test reaches counts as unexplained too.",
        "",
        "## Survivors",
        "",
    ]
    unexplained = [
        f"{m.function}: no fast test reaches it"
        for m in mutants
        if m.status == "no tests" and area_of(m.name) in MUST_EXPLAIN
    ]
    for area in SCOPE:
        survivors = [m for m in mutants if m.status == "survived" and area_of(m.name) == area]
        if not survivors:
            continue
        lines += [f"### {area}", ""]
        for key in sorted(map(stable_id, survivors)):
            reason = explained.get(key)
            if reason is None and area in MUST_EXPLAIN:
                unexplained.append(key)
            lines.append(f"- `{key}`  \n  {reason or '**not explained yet**'}")
        lines.append("")
    REPORT.write_text("\n".join(lines))
    return unexplained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run mutmut over the scope first")
    parser.add_argument("--fresh", action="store_true", help="with --run: forget every result")
    parser.add_argument("--max-children", type=int, default=2, help="mutmut's workers")
    parser.add_argument(
        "--skeleton", action="store_true", help="print YAML for unexplained survivors"
    )
    options = parser.parse_args()
    try:
        metadata.version("mutmut")
    except metadata.PackageNotFoundError:
        print("mutmut is missing: pip install -e '.[mutate]'", file=sys.stderr)
        return 2
    if options.run:
        run_mutmut(options.max_children, options.fresh)
    explained = yaml.safe_load(EQUIVALENTS.read_text()) or {}
    unexplained = write_report(read_results(), explained)
    if options.skeleton:
        print(yaml.safe_dump({key: "" for key in unexplained}, allow_unicode=True, width=200))
    print(f"{REPORT.relative_to(ROOT)} written; {len(unexplained)} survivors to explain.")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
