"""Resources of a trial and the concurrency cap, from what the cluster has."""

import pytest

from data.errors import BadInput
from search.cluster import MPS_TRIALS, TRIALS_PER_GPU, plan


def test_cpu_machine_runs_one_trial_per_core():
    p = plan({"CPU": 2.0}, None, None, None, mps=False)
    assert (p.cpus_per_trial, p.gpus_per_trial, p.max_concurrent, p.device) == (1, 0, 2, "cpu")
    p = plan({"CPU": 8.0}, 2, None, None, mps=False)
    assert p.max_concurrent == 4


def test_gpus_are_shared_by_default_and_fractions_pack():
    p = plan({"CPU": 16.0, "GPU": 2.0}, None, None, None, mps=False)
    assert p.device == "cuda" and p.gpus_per_trial == 1 / TRIALS_PER_GPU
    assert p.max_concurrent == 2 * TRIALS_PER_GPU and p.cpus_per_trial == 2
    p = plan({"CPU": 16.0, "GPU": 1.0}, None, 0.5, None, mps=False)
    assert p.max_concurrent == 2


def test_mps_trials_run_under_their_own_cap():
    p = plan({"CPU": 10.0}, None, None, 8, mps=True)
    assert p.device == "mps" and p.max_concurrent == MPS_TRIALS and p.gpus_per_trial == 0


def test_user_concurrency_wins_on_cpu():
    assert plan({"CPU": 2.0}, None, None, 1, mps=False).max_concurrent == 1


@pytest.mark.parametrize(
    "resources, cpus, gpus, message",
    [
        ({"CPU": 2.0}, None, 1.0, "gpus-per-trial"),
        ({"CPU": 2.0, "GPU": 1.0}, None, 2.0, "gpus-per-trial"),
        ({"CPU": 2.0}, 4.0, None, "cpus-per-trial"),
    ],
)
def test_more_than_the_machine_has_is_bad_input(resources, cpus, gpus, message):
    with pytest.raises(BadInput, match=message):
        plan(resources, cpus, gpus, None, mps=False)
