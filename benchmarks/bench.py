"""The benchmark suite: every figure of issue 5 in one run, written to docs/benchmarks.md.

    python benchmarks/bench.py            # the full suite
    python benchmarks/bench.py --quick    # tiny sizes, one or two repeats: a smoke test
    python benchmarks/bench.py --only h,i # rerun sections h and i alone, in place in --out

BLAS runs on one thread throughout (threadpoolctl), except inside the joblib sweep,
whose workers the project itself pins to one thread each. Nothing else should run on
the machine meanwhile.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import accuracy  # noqa: E402
import batched  # noqa: E402
import halving_bench  # noqa: E402
import kernel  # noqa: E402
import pipeline_bench  # noqa: E402
import platform_bench  # noqa: E402
import recording  # noqa: E402
import sweep_bench  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from timing import blas_description, machine, table  # noqa: E402


def targets_table(found: dict) -> str:
    peers, dtype = found["peers"]["ratios"], found["dtype"]
    f64, f32 = peers["float64"], peers["float32"]
    # (ratio, measured, target): the target is "<= bound" or ">= bound".
    rows = [
        ("one iteration / its kernel products", f64["overhead (kernel products)"], "<= 1.3"),
        ("one iteration / the naive five products", f64["overhead (naive products)"], "<= 1.3"),
        ("sklearn / ours, float64", f64["vs sklearn"], ">= 3"),
        ("sklearn / ours, float32 (both float32)", f32["vs sklearn"], ">= 3"),
        ("per-sample / ours", f64["vs per-sample"], ">= 100"),
        ("per-sample (vector) / ours", f64["vs per-sample (vector)"], ">= 100"),
        ("float64 / float32 time", dtype["float32 speedup"], ">= 1.5"),
    ]
    if "pipeline" in found:
        rows.append(("dvc repro --force / run.py", found["pipeline"]["repro / run.py"], "<= 2"))
    if "mlflow" in found:
        rows.append(("MLflow logging / run", found["mlflow"]["logging share"], "<= 0.15"))
    if "sweep" in found:
        rows.append(("basic / joblib(2) sweep time", found["sweep"]["joblib speedup"], ">= 1.7"))
    if "grid" in found:
        rows.append(("sweep=grid unshared / shared", found["grid"]["share speedup"], ">= 1.6"))
        rows.append(
            ("sweep=grid / its training floor, wall", found["grid"]["grid / floor"], "<= 1.5")
        )
        rows.append(
            ("sweep=grid / its training floor, CPU", found["grid"]["grid / floor CPU"], "<= 1.5")
        )
    cells = []
    for name, value, target in rows:
        sense, bound = target.split()
        met = value <= float(bound) if sense == "<=" else value >= float(bound)
        cells.append([name, f"{value:.2f}", target, "met" if met else "**not met**"])
    cells.append(
        [
            "float32 test accuracy = float64, every seed",
            str(dtype["same accuracy"]),
            "True",
            "met" if dtype["same accuracy"] else "**not met**",
        ]
    )
    return table(["ratio", "measured", "target", ""], cells)


def sizes(quick: bool) -> kernel.Sizes:
    return kernel.Sizes.quick() if quick else kernel.Sizes.full()


# Sections that can be rerun alone (--only) and spliced into the existing document. Section
# a comes with b, which divides a's timings by the products' own.
ALONE = {
    "a": lambda quick: kernel.section_peers(sizes(quick)),
    "h": lambda quick: batched.section_batched(sizes(quick)),
    "i": lambda quick: recording.section_recording(
        recording.BEFORE_REVISION, *((300, 1, 1) if quick else (10_000, 2, 3))
    ),
    "v": accuracy.section_accuracy,
    "p": platform_bench.section_platform,
}


def splice(document: str, text: str) -> str:
    """``document`` with each section of ``text`` replacing the section of the same letter
    ("### h."), or appended."""
    for section in re.split(r"\n(?=### )", text.strip("\n")):
        document = _splice_one(document, section)
    return document


def _splice_one(document: str, section: str) -> str:
    heading = section.split(" ", 2)[1]
    start = document.find(f"\n### {heading} ")
    if start < 0:
        return document.rstrip("\n") + "\n\n" + section + "\n"
    end = min(
        (i for i in (document.find("\n### ", start + 1), document.find("\n## ", start + 1))
         if i >= 0),
        default=len(document),
    )  # fmt: skip
    return document[: start + 1] + section.rstrip("\n") + "\n" + document[end:]


def run_alone(letters: list[str], quick: bool, out: Path) -> None:
    document = out.read_text() if out.is_file() else "# Benchmarks\n"
    with threadpool_limits(limits=1, user_api="blas"):
        for letter in letters:
            print(f"{letter}: alone", flush=True)
            document = splice(document, ALONE[letter](quick)[0])
    out.write_text(document)
    print(f"updated {out}")


def run_scale_out(args: argparse.Namespace) -> None:
    """The scale-out sections alone, written into the existing document."""
    import scale_out

    clone = pipeline_bench.Clone(iterations=sizes(args.quick).accuracy_iterations)
    try:
        text, _ = scale_out.section(clone, args.quick)
    finally:
        clone.remove()
    document = args.out.read_text() if args.out.is_file() else "# Benchmarks\n"
    args.out.write_text(scale_out.replace_section(document, text))
    print(f"wrote the scale-out section of {args.out}")


GRID_SECTIONS = {
    "s": sweep_bench.section_grid,
    "t": sweep_bench.section_eight,
    "u": sweep_bench.section_order,
    "w": halving_bench.section_halving,
}


def run_grid_alone(out: Path, letter: str) -> None:
    """Section s (the grid on, off and before issue 12), t (the 8-job sweep before issue
    12 and now), u (the grid's launch order) or w (successive halving against the
    exhaustive sweep) alone, spliced into ``out``."""
    clone = pipeline_bench.Clone(iterations=3000)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            text, _ = GRID_SECTIONS[letter](clone)
    finally:
        clone.remove()
    document = out.read_text() if out.is_file() else "# Benchmarks\n"
    out.write_text(splice(document, text))
    print(f"updated {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "benchmarks.md")
    parser.add_argument("--skip-pipeline", action="store_true", help="sections a-d, h, v only")
    parser.add_argument(
        "--only",
        help=f"comma-separated letters among {', '.join(ALONE)} (a brings b along; the"
        " targets table keeps its figures); or s (the grid), or t"
        " (the 8-job sweep, before issue 12 and now); or u (the grid's launch order); or w"
        " (successive halving against the exhaustive sweep of its space); or"
        " scale-out (which needs the extras slurm, ray, server and root for the local"
        " stack), run alone and replaced in --out",
    )
    args = parser.parse_args()
    if args.only == "scale-out":
        run_scale_out(args)
        return
    if args.only in GRID_SECTIONS:
        run_grid_alone(args.out, args.only)
        return
    if args.only:
        letters = args.only.split(",")
        if unknown := [x for x in letters if x not in ALONE]:
            parser.error(f"--only: no section {', '.join(unknown)}; allowed: {', '.join(ALONE)}")
        run_alone(letters, args.quick, args.out)
        return
    chosen = sizes(args.quick)
    img_dir = args.out.parent / "img"
    started = time.perf_counter()
    sections, found = [], {}
    with threadpool_limits(limits=1, user_api="blas"):
        threads = sorted({p["num_threads"] for p in blas_description()})
        print("a, b: peers and products", flush=True)
        text, found["peers"] = kernel.section_peers(chosen)
        sections.append(text)
        print("c: scaling", flush=True)
        text, found["scaling"] = kernel.section_scaling(chosen, img_dir)
        sections.append(text)
        print("d: dtype", flush=True)
        text, found["dtype"] = kernel.section_dtype(chosen, found["peers"])
        sections.append(text)
    if not args.skip_pipeline:
        clone = pipeline_bench.Clone(
            iterations=chosen.accuracy_iterations, warmup=0 if args.quick else 1
        )
        repeats = max(chosen.repeats - 2, 1) if args.quick else 5
        try:
            print("e: dvc repro against run.py", flush=True)
            text, found["pipeline"] = pipeline_bench.section_pipeline(clone, repeats)
            sections.append(text)
            print("f: mlflow", flush=True)
            text, found["mlflow"] = pipeline_bench.section_mlflow(clone, repeats)
            sections.append(text)
            print("g: sweep", flush=True)
            jobs = 2 if args.quick else 8
            text, found["sweep"] = pipeline_bench.section_sweep(clone, repeats, jobs)
            sections.append(text)
            if not args.quick:
                print("s: the grid, budgets shared or not", flush=True)
                text, found["grid"] = sweep_bench.section_grid(clone)
                sections.append(text)
                print("t: the 8-job sweep, before issue 12 and now", flush=True)
                text, found["eight"] = sweep_bench.section_eight(clone)
                sections.append(text)
                print("u: the grid's launch order", flush=True)
                text, found["order"] = sweep_bench.section_order(clone)
                sections.append(text)
                print("w: successive halving against the exhaustive sweep", flush=True)
                text, found["halving"] = halving_bench.section_halving(clone)
                sections.append(text)
        finally:
            clone.remove()
    with threadpool_limits(limits=1, user_api="blas"):
        print("h: batched", flush=True)
        text, found["batched"] = batched.section_batched(chosen)
        sections.append(text)
        if not args.skip_pipeline:
            print("i: recording", flush=True)
            sections.append(ALONE["i"](args.quick)[0])
        print("v: accuracy over 10 splits against the peers", flush=True)
        text, found["accuracy"] = accuracy.section_accuracy(args.quick)
        sections.append(text)
        print("p: a platform-independent exp", flush=True)
        text, found["platform"] = platform_bench.section_platform(args.quick)
        sections.append(text)
    command = "python benchmarks/bench.py" + (" --quick" if args.quick else "")
    info = machine()
    header = [
        "# Benchmarks\n",
        "Generated by `" + command + "` (PATH with the project's virtualenv first) in"
        f" {time.perf_counter() - started:.0f} s. Do not edit by hand: rerun the command.\n",
        table(["", ""], [*info.items(), ["BLAS threads used", f"{threads} (threadpoolctl)"]]),
        "",
        "Timings: warm-up first, then repeats; median and min over the repeats. Ratios"
        " compare medians measured in this same run.\n",
        "## The targets of issue 5\n",
        targets_table(found),
        "",
        "## Measurements\n",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + sections) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
