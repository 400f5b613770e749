"""What one trial is given and how many run at once, from what the Ray cluster has.

On a CPU machine each trial gets one core and there is one trial per core. With CUDA, trials
take a fraction of a GPU (four per GPU by default: one small policy leaves a GPU mostly
idle). Ray knows no MPS resource, so on Apple silicon trials that share the MPS device run
under their own concurrency cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from data.errors import BadInput

TRIALS_PER_GPU = 4
MPS_TRIALS = 2  # trials sharing one Apple GPU


@dataclass(frozen=True)
class Placement:
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int
    device: str  # cpu | cuda | mps: what a trial's train.device becomes

    def describe(self) -> str:
        gpus = f", {self.gpus_per_trial:g} GPU" if self.gpus_per_trial else ""
        return (
            f"{self.max_concurrent} trial(s) at once, each {self.cpus_per_trial:g} CPU{gpus} "
            f"on {self.device}"
        )


def plan(
    resources: dict,
    cpus_per_trial: float | None,
    gpus_per_trial: float | None,
    max_concurrent: int | None,
    mps: bool,
) -> Placement:
    """Resources of one trial and the concurrency cap, from the cluster's resources and the
    user's flags (None: autodetect)."""
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if gpus_per_trial is not None and gpus_per_trial > gpus:
        raise BadInput(
            f"--gpus-per-trial {gpus_per_trial:g} is more than the {gpus:g} GPU(s) Ray sees; "
            "use at most that (fractions such as 0.25 share a GPU) or leave it out"
        )
    if gpus_per_trial is None:
        gpus_per_trial = 1 / TRIALS_PER_GPU if gpus > 0 else 0.0
    if gpus_per_trial > 0:
        device, slots = "cuda", math.floor(gpus / gpus_per_trial + 1e-9)
        cpus_per_trial = cpus_per_trial or max(1, math.floor(cpus / slots))
    elif mps:
        device, slots = "mps", MPS_TRIALS
        cpus_per_trial = cpus_per_trial or 1
    else:
        device = "cpu"
        cpus_per_trial = cpus_per_trial or 1
        slots = math.floor(cpus / cpus_per_trial)
    if cpus_per_trial > cpus:
        raise BadInput(
            f"--cpus-per-trial {cpus_per_trial:g} is more than the {cpus:g} CPU(s) Ray sees; "
            "use at most that"
        )
    concurrent = max_concurrent or max(1, slots)
    if device == "mps":
        concurrent = min(concurrent, MPS_TRIALS)
    return Placement(cpus_per_trial, gpus_per_trial, concurrent, device)
