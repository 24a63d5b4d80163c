"""``movielens-rec tune --executor ray``: a study's trials as Ray Tune trials.

Ray Tune's Optuna searcher (``OptunaSearch``) proposes every trial from the very study local
tuning keeps: the journal in the output folder, the seeded TPE sampler, the starting config
first. Each trial runs as a Ray Tune trial of one CPU, on a local Ray started here or on the
cluster at an address, and trains and scores exactly as a local trial does (the same validation
split, evaluations and checks; the same config and seed give the same scores). Optuna's
``MedianPruner`` judges each reported score as locally; the trial it prunes is stopped through
Ray Tune's stopper and recorded as PRUNED, where a Ray Tune scheduler's stop would be recorded as
COMPLETE with its partial score.

Trials run side by side, as many as Ray has CPUs, so the sampler proposes a trial before the
running ones have ended: a study on k CPUs does not draw the sequence of one run in a single
process, but its records (``tune.json``, ``trials.csv``, ``best_config.json``) are the same in
kind, and either executor continues a study the other started.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping
from typing import Any
from unittest import mock

from ..benchmark.executors import ray_session
from .space import trial_config
from .trial import changed_fields, import_optuna, score_trial

# The score a Ray trial reports at each evaluation, and why it was pruned where it was.
METRIC = "validation_return"
PRUNED = "pruned"
# The Optuna trial's number, passed to the Ray trial beside its parameters.
NUMBER = "optuna_trial_number"


class _Reporter:
    """Stands for the Optuna trial inside a Ray trial: each evaluation's score goes to Ray Tune
    (the driver's pruner decides; this never prunes by itself), and a reason to prune is kept
    for the last report."""

    def __init__(self, number: int, report: Callable[[dict[str, Any]], None]) -> None:
        self.number = number
        self._report = report
        self.user_attrs: dict[str, Any] = {}
        self.last = float("nan")

    def report(self, value: float, step: int) -> None:
        self.last = value
        self._report({METRIC: value})

    def should_prune(self) -> bool:
        return False

    def set_user_attr(self, key: str, value: Any) -> None:
        self.user_attrs[key] = value


def _ray_trial(
    params: dict[str, Any], agent: str, base: Any, env_kwargs: dict[str, Any], timesteps: int,
    seed: int,
) -> None:  # fmt: skip
    """One trial, in a Ray worker: train ``params`` (over ``base``) and report its scores."""
    from ray import tune as ray_tune

    from ..threads import torch_threads

    optuna = import_optuna()
    params = dict(params)
    number = params.pop(NUMBER)
    config = trial_config(agent, optuna.trial.FixedTrial(params, number), base)
    reporter = _Reporter(number, ray_tune.report)
    try:
        with torch_threads(1):
            score_trial(agent, config, env_kwargs, timesteps, seed, reporter, optuna)
    except optuna.TrialPruned:
        ray_tune.report({METRIC: reporter.last, PRUNED: reporter.user_attrs[PRUNED]})


def run_on_ray(
    *, agent: str, base: Any, env_kwargs: dict[str, Any], timesteps: int, seed: int,
    trials: int, study: Any, storage: Any, optuna: Any, address: str | None,
    on_trial: Callable[[Any], None],
) -> None:  # fmt: skip
    """Run ``trials`` more trials of ``study`` (kept in ``storage``; its sampler and pruner) as
    Ray Tune trials; call ``on_trial`` with each Optuna trial once it has ended (in this process).

    Raises:
        the error of the first trial that failed (others may have finished and are kept), or
        ``KeyboardInterrupt`` where Ray Tune stopped the trials early (Ctrl-C).
    """
    from ray import tune as ray_tune
    from ray.tune.search.optuna import OptunaSearch

    class StudySearch(OptunaSearch):  # type: ignore[misc]
        """Ray Tune's Optuna searcher on ``study``, pruning with its pruner."""

        def __init__(self) -> None:
            self.pruned: dict[str, str] = {}
            self.reported: dict[str, int] = {}
            super().__init__(
                space=self._space_of,
                metric=METRIC,
                mode="max",
                sampler=study.sampler,
                storage=storage,
                study_name=study.study_name,
            )

        def _setup_study(self, mode: Any) -> None:
            super()._setup_study(mode)
            assert self._ot_study is not None  # made by the call above
            self._ot_study.pruner = study.pruner  # Ray's searcher sets a pruner that never prunes

        @staticmethod
        def _space_of(trial: Any) -> dict[str, Any]:
            trial_config(agent, trial, base)  # draws the parameters, which Ray Tune captures
            return {NUMBER: trial.number}

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            params: dict[str, Any] | None = super().suggest(trial_id)
            if params is not None:
                drawn = {k: v for k, v in params.items() if k != NUMBER}
                config = trial_config(agent, optuna.trial.FixedTrial(drawn), base)
                self._ot_trials[trial_id].set_user_attr(
                    "config_fields", changed_fields(config, base)
                )
            return params

        def save(self, checkpoint_path: str) -> None:
            """Nothing: the study's journal is its state (Ray Tune's experiment is not resumed)."""

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            """Reported by :meth:`stop`, which Ray Tune calls first."""

        def stop(self, trial_id: str, result: Mapping[str, Any]) -> bool:
            """Ray Tune's stopper: report each new score to the Optuna trial and stop the
            trial where the pruner prunes it."""
            if PRUNED in result or trial_id in self.pruned or trial_id in self._completed_trials:
                return True
            step = int(result["training_iteration"])
            if self.reported.get(trial_id, 0) >= step:
                return False
            self.reported[trial_id] = step
            value = float(result[METRIC])
            trial = self._ot_trials[trial_id]
            trial.report(value, step)
            if trial.should_prune():
                self.pruned[trial_id] = f"below the median at evaluation {step}: {value:.4g}"
                return True
            return False

        def on_trial_complete(
            self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
        ) -> None:
            why = self.pruned.pop(trial_id, None) or (result or {}).get(PRUNED)
            trial = self._ot_trials[trial_id]
            if why and not error:
                trial.set_user_attr(PRUNED, why)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                self._completed_trials.add(trial_id)
            else:
                super().on_trial_complete(trial_id, result, error)
            on_trial(study.trials[trial.number])

    searcher = StudySearch()
    ray_results = tempfile.mkdtemp(prefix="movielens-rec-tune-")  # Ray Tune's own files
    # Ray Tune installs its own Ctrl-C handler (a graceful stop) and leaves it there: the
    # caller's is put back, or Ctrl-C would be swallowed for the rest of the process.
    on_ctrl_c = signal.getsignal(signal.SIGINT)
    try:
        with ray_session(address):
            trainable = ray_tune.with_resources(
                ray_tune.with_parameters(
                    _ray_trial, agent=agent, base=base, env_kwargs=env_kwargs,
                    timesteps=timesteps, seed=seed,
                ),
                {"cpu": 1},
            )  # fmt: skip
            # Ray Tune's newer console output prints its experiment's settings and paths (a
            # folder removed at the end) even at verbose=0; the older one is silent there.
            with mock.patch.dict(os.environ, {"RAY_AIR_NEW_OUTPUT": "0"}):
                results = ray_tune.Tuner(
                    trainable,
                    tune_config=ray_tune.TuneConfig(search_alg=searcher, num_samples=trials),
                    run_config=ray_tune.RunConfig(
                        storage_path=ray_results, name="tune", stop=searcher.stop, verbose=0
                    ),
                ).fit()
    finally:
        if on_ctrl_c is not None:
            signal.signal(signal.SIGINT, on_ctrl_c)
        shutil.rmtree(ray_results, ignore_errors=True)
    for index in range(len(results)):
        result = results[index]
        if result.error is not None:
            raise _cause(result.error)
    if len(searcher._completed_trials) < trials:  # Ray Tune ends early only on Ctrl-C
        raise KeyboardInterrupt


def _cause(error: BaseException) -> BaseException:
    """The trial's own exception where Ray wrapped it (``RayTaskError``, ``TuneError``)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error
