"""What both sides of a sweep share: a configuration's key, and the objective that
carries a job's records back."""

from __future__ import annotations

import pickle

from digits_nn.sweeps.protocol import Objective, job_key


def test_a_jobs_key_is_its_configuration_whatever_the_order() -> None:
    assert job_key(["train.alpha=1.0", "seed=2"]) == "seed=2,train.alpha=1.0"
    assert job_key(["seed=2", "train.alpha=1.0"]) == "seed=2,train.alpha=1.0"
    assert job_key(["seed=2"]) != job_key(["seed=3"])
    odd = [job_key(["model.hidden_sizes=[5,6]"]), job_key(["model.hidden_sizes=[56]"])]
    assert len(set(odd)) == 2 and all("/" not in k and "[" not in k for k in odd)
    assert len(job_key([f"k{i}=value-{i}" for i in range(40)])) < 120


def test_the_objective_travels_pickled_with_its_records() -> None:
    value = Objective.of(0.75, [{"key": "k", "status": "FINISHED"}])
    back = pickle.loads(pickle.dumps(value))
    assert float(back) == 0.75 and back.records == value.records
