"""The numeric platform a run records: what decides the last bits, read and
never set; the key that says whether two platforms give the same bits; the one-line
notice before a training whose platform differs from the committed one's."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from digits_nn.config import parse
from digits_nn.pipeline import numeric_platform as platform_
from digits_nn.pipeline.outputs import read_platform
from digits_nn.pipeline.recording import new_run
from digits_nn.pipeline.steps import announce_platform
from helpers import project_env, search_runs, tiny_run_data

# numpy's AVX-512 paths off: another platform, simulated on one machine.
WITHOUT_AVX512 = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL"}


def described_in_a_fresh_process(**env: str) -> dict[str, str]:
    code = "import json; from digits_nn.pipeline.numeric_platform import describe;"
    code += " print(json.dumps(describe()))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=project_env(**env), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_platform_names_what_decides_the_bits_as_strings() -> None:
    found = platform_.describe()
    assert set(found) >= set(platform_.KEY + platform_.INFORMATIVE) - set(platform_.STEERING)
    assert all(isinstance(value, str) and value for value in found.values())
    assert found["machine"] and found["libc"].split()[0] in ("glibc", "musl", "unknown")
    import numpy

    assert found["numpy"] == numpy.__version__
    assert found["blas"].startswith(("openblas", "mkl", "blis", "flexiblas"))


def test_numpy_steered_off_its_avx512_paths_is_another_platform() -> None:
    """Whatever the CPU: on one without AVX-512 the steering changes no dispatch, yet the
    platform recorded says it was steered, so the bits are not promised."""
    native = described_in_a_fresh_process()
    steered = described_in_a_fresh_process(**WITHOUT_AVX512)
    assert steered["npy_disable_cpu_features"] == WITHOUT_AVX512["NPY_DISABLE_CPU_FEATURES"]
    assert not {"X86_V4", "AVX512_ICL"} & set(steered["numpy_simd"].split())
    assert "npy_disable_cpu_features" not in native
    assert not platform_.same_bits(native, steered)
    assert platform_.same_bits(native, described_in_a_fresh_process())


def test_what_is_for_a_person_only_does_not_change_the_key() -> None:
    here = platform_.describe()
    elsewhere = here | {"cpu": "another CPU", "python": "3.99", "blas_threads": "64"}
    assert platform_.same_bits(here, elsewhere)
    assert platform_.notice(here, elsewhere) is None
    for field in platform_.KEY:
        assert not platform_.same_bits(here, here | {field: "something else"}), field


def test_the_recorded_file_is_the_same_wherever_the_key_is(tmp_path: Path) -> None:
    """reports/platform.json is hashed in dvc.lock: a fresh clone on the platform that
    wrote it, under another CPU name, Python or BLAS thread count, must not change it."""
    here = platform_.describe()
    elsewhere = here | {"cpu": "another CPU", "python": "3.99", "blas_threads": "64"}
    assert platform_.recorded(here) == platform_.recorded(elsewhere)
    assert set(platform_.recorded(here)) <= set(platform_.KEY)
    assert platform_.same_bits(here, platform_.recorded(here))
    assert platform_.summary(platform_.recorded(here)).startswith("numpy ")


def test_the_notice_is_one_line_saying_which_platforms_and_what_changes() -> None:
    here = platform_.describe()
    lock_writer = here | {"blas_kernel": "Haswell", "numpy_simd": "X86_V3"}
    line = platform_.notice(lock_writer, here)
    assert line is not None and "\n" not in line
    assert f"blas_kernel Haswell -> {here['blas_kernel']}" in line
    assert "dvc.lock" in line and "dvc pull" in line and "docs/reproducibility.md" in line
    assert platform_.notice(None, here) is None  # nothing recorded: nothing to say
    assert platform_.notice(here, dict(here)) is None


def test_the_train_stage_reads_the_recorded_platform_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorded = tmp_path / "platform.json"
    assert announce_platform(recorded) is None  # none yet
    recorded.write_text("{not json")
    assert read_platform(recorded) is None and announce_platform(recorded) is None
    recorded.write_text(json.dumps(platform_.describe() | {"numpy": "0.0"}))
    with caplog.at_level(logging.WARNING, logger="digits_nn"):
        line = announce_platform(recorded)
    assert line and [r.getMessage() for r in caplog.records] == [line]
    assert "numpy 0.0 ->" in line


def test_every_run_is_tagged_with_its_platform(store) -> None:
    with new_run(store, parse({}), tiny_run_data()):
        pass
    [found] = search_runs(store.uri)
    tags = {k: v for k, v in found.data.tags.items() if k.startswith("platform.")}
    assert tags == platform_.tags(platform_.describe())
    assert {"platform.numpy_simd", "platform.blas_kernel", "platform.cpu"} <= set(tags)


# A platform.json as a machine with OpenBLAS's kernel fixed by its administrators wrote
# it, and a machine whose numpy was steered off its AVX-512 paths (made-up values, so
# the checks hold on every CPU).
LOCK_WRITER = {
    "machine": "x86_64",
    "libc": "glibc 2.36",
    "numpy": "2.3.1",
    "numpy_baseline": "SSE SSE2 SSE3",
    "numpy_simd": "X86_V3 X86_V4",
    "blas": "scipy-openblas 0.3.29",
    "blas_kernel": "SkylakeX",
    "openblas_coretype": "SkylakeX",
    "scikit-learn": "1.7.0",
}
STEERED = {
    "machine": "x86_64",
    "libc": "glibc 2.36",
    "numpy": "2.3.1",
    "numpy_baseline": "SSE SSE2 SSE3",
    "numpy_simd": "X86_V3",
    "npy_disable_cpu_features": "X86_V4",
    "blas": "scipy-openblas 0.3.29",
    "blas_kernel": "Haswell",
    "scikit-learn": "1.7.0",
    "cpu": "Made-up CPU @ 3.00GHz",
    "python": "3.11.7",
    "blas_threads": "2",
}


def test_the_notice_names_both_platforms_and_each_field_that_changed_set_or_unset() -> None:
    assert platform_.notice(LOCK_WRITER, STEERED) == (
        "platform: the committed outputs (dvc.lock, reports/platform.json) were computed on"
        " numpy 2.3.1 [X86_V3 X86_V4], scipy-openblas 0.3.29 SkylakeX, glibc 2.36;"
        " this machine is Made-up CPU @ 3.00GHz: numpy 2.3.1 [X86_V3], scipy-openblas"
        " 0.3.29 Haswell, glibc 2.36 (numpy_simd X86_V3 X86_V4 -> X86_V3;"
        " npy_disable_cpu_features unset -> X86_V4; blas_kernel SkylakeX -> Haswell;"
        " openblas_coretype SkylakeX -> unset). The weights will differ in their last bits,"
        " so dvc.lock's hashes of the model, cost curve and metrics will change; the metrics"
        " will agree with the committed ones within 1 row of accuracy and a relative 1e-06"
        " of cost (docs/reproducibility.md). Commit the new dvc.lock, or `dvc pull` the"
        " team's outputs to get the committed bits."
    )


def test_a_key_field_a_platform_lacks_reads_as_unset() -> None:
    assert platform_.key({}) == dict.fromkeys(platform_.KEY, "")
    assert platform_.same_bits(LOCK_WRITER, LOCK_WRITER | {"openblas_l2_size": ""})
    assert platform_.differences({}, {"blas_kernel": "Haswell"}) == ["blas_kernel unset -> Haswell"]


def test_the_summary_marks_what_a_platform_does_not_name() -> None:
    assert platform_.summary({}) == "numpy ? [?], ? ?, ?"
    assert platform_.summary({"cpu": ""}) == "numpy ? [?], ? ?, ?"
