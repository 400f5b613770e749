"""The searcher: Optuna's TPE (or random sampling) behind Ray Tune's OptunaSearch.

Ray's OptunaSearch tells Optuna that a trial the scheduler stopped early is COMPLETE with
its low-budget value; TPE then models a half-trained policy as a finished one and steers
away from configurations that merely start slowly. Here such a trial is told PRUNED (its
intermediate values are already in the study), as Optuna's own pruners do. The values the
study holds carry the validation-loss tie-break, so its best trial is the search's; the real
configuration values are each trial's user attributes (its parameters are the sampling
coordinates, e.g. ``space.log2_hidden``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna
from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from core.config import COORDINATES
from core.metrics import TIEBREAK, TIME, judged
from data.errors import BadInput
from search.upstream import optuna_knows, optuna_relink, optuna_study, optuna_told, optuna_trial

# The user attribute that names a study trial's Ray trial (see relink).
RAY_TRIAL = "ray_trial_id"


def make_sampler(
    name: str, seed: int, num_samples: int, startup: int | None = None, multivariate: bool = True
) -> optuna.samplers.BaseSampler:
    """TPE or random search. TPE samples ``startup`` trials at random first: by default a
    sixth of the search, at least 2. The search's first trial is the preset, so TPE has a
    good point from the start, and fewer random trials reached the target sooner on recorded
    learning curves (BENCHMARKS.md, the replay table)."""
    if name == "tpe":
        # Multivariate TPE models the parameters jointly (depth and learning rate interact);
        # the constant liar keeps parallel workers from proposing the same point.
        return optuna.samplers.TPESampler(
            seed=seed,
            multivariate=multivariate,
            constant_liar=True,
            n_startup_trials=max(2, num_samples // 6) if startup is None else startup,
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise BadInput(f"unknown searcher {name!r}: use tpe or random")


class PruningAwareOptunaSearch(OptunaSearch):
    """OptunaSearch that reports trials stopped before ``max_t`` as PRUNED."""

    def __init__(
        self,
        space: Callable,
        sampler,
        metric: str,
        mode: str,
        max_t: int,
        points_to_evaluate: list[dict] | None = None,
        storage=None,
        study_name: str | None = None,
    ):
        super().__init__(
            space=space,
            metric=metric,
            mode=mode,
            sampler=sampler,
            points_to_evaluate=points_to_evaluate,
            storage=storage,
            study_name=study_name,
        )
        with warnings.catch_warnings():  # experimental in Optuna 5.0, stable in use since 3.2
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study.set_metric_names([metric])  # optuna-dashboard's axes name the metric
        self.max_t = max_t

    def suggest(self, trial_id: str):
        """The configuration values only: the sampling coordinates (``space.*``) stay in the
        Optuna study, so Ray's trial lines and tables show what a trial trains with. The
        study's trials carry those values too, as user attributes (optuna-dashboard shows
        them)."""
        suggested = super().suggest(trial_id)
        if not isinstance(suggested, dict):  # finished, or nothing to propose yet
            return suggested
        values = {k: v for k, v in suggested.items() if not k.startswith(COORDINATES)}
        for key, value in {**values, RAY_TRIAL: trial_id}.items():
            optuna_trial(self, trial_id).set_user_attr(key, value)
        return values

    def relink(self, trial_id: str) -> None:
        """A trial proposed after Ray last saved the searcher's state, then resumed after a
        kill, is unknown to the restored searcher, though the study (written as it goes)
        has it: find it there by its Ray trial id."""
        if optuna_knows(self, trial_id):
            return
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if frozen.user_attrs.get(RAY_TRIAL) == trial_id:
                optuna_relink(self, trial_id, optuna.Trial(self.study, frozen._trial_id))

    def judged(self, result: dict | None) -> dict | None:
        """The result with its metric shifted by the tie-break of core/metrics.py, as ASHA
        judges and the exports rank: the study's best trial is then the search's."""
        value = (result or {}).get(self.metric)
        if value is None:
            return result
        return {**result, self.metric: judged(self.metric, value, result.get(TIEBREAK))}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.relink(trial_id)
        super().on_trial_result(trial_id, self.judged(result))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        self.relink(trial_id)
        result = self.judged(result)
        stopped_early = (
            result is not None
            and not error
            and result.get(TIME, self.max_t) < self.max_t
            and trial_id not in optuna_told(self)
        )
        if not stopped_early:
            super().on_trial_complete(trial_id, result, error)
            return
        ot_trial = optuna_trial(self, trial_id)
        # The last result is not yet an intermediate value when the trial is stopped.
        value = result.get(self.metric)
        if value is not None:
            ot_trial.report(value, result[TRAINING_ITERATION])
        self.study.tell(ot_trial, state=TrialState.PRUNED)
        optuna_told(self).add(trial_id)

    @property
    def study(self) -> optuna.Study:
        return optuna_study(self)
