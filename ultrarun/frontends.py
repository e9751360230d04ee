"""Ready-made masters for the common cases (``TPE``, ``BOHB``, ``DEHB``, ``HyperBand``,
``RandomSearch``) and :func:`minimize`, with HpBandSter's names and arguments. Everything after
the configuration space is keyword-only (``ultrarun.compat.hpbandster`` keeps HpBandSter's
positional order). See docs/master.md ("Front ends") and docs/optimizers.md for which to pick.
"""
from __future__ import annotations

import inspect
from typing import Any

from ConfigSpace import ConfigurationSpace

from . import optimizers
from .dispatcher import PYRO_KEYWORDS, dispatcher_for
from .errors import ConfigurationError
from .executor import RetryPolicy
from .iterations import (AdaptiveIterGenerator, ASHAIterGenerator, BaseIterGenerator,
                         CustomIterGenerator, HyperBandIterGenerator,
                         SuccessiveHalvingIterGenerator, max_bracket_index)
from .job import Incumbents
from .master import Master
from .results import Result

#: the schedules a front end can run
ITERATIONS = ("hyperband", "successive_halving", "adaptive", "asha")
#: what ``minimize`` and ``ultrarun demo`` run unless told otherwise: the combination that won
#: the quality benchmark (docs/benchmarks.md); "adaptive" is successive halving that starts
#: higher where small budgets mislead (docs/iterations.md)
DEFAULT_METHOD = "tpe"
DEFAULT_ITERATIONS = "adaptive"


def _generator(min_budget: float, max_budget: float, eta: float, asha: bool,
               iterations: str | None = None, bracket_formula: str = "paper"
               ) -> BaseIterGenerator:
    if iterations is not None and iterations not in ITERATIONS:
        raise ConfigurationError(f"iterations is {iterations!r}; it must be one of "
                                 f"{', '.join(map(repr, ITERATIONS))}")
    if asha and iterations not in (None, "asha"):
        raise ConfigurationError(f"asha=True and iterations={iterations!r} disagree; give one")
    kind = "asha" if asha else (iterations or "hyperband")
    if kind == "hyperband":
        return HyperBandIterGenerator(min_budget, max_budget, eta, bracket_formula)
    if kind == "successive_halving":
        return SuccessiveHalvingIterGenerator(min_budget, max_budget, eta, bracket_formula)
    if kind == "adaptive":
        return AdaptiveIterGenerator(min_budget, max_budget, eta, bracket_formula)
    # One ASHA iteration samples as many configs as Hyperband's most aggressive bracket, so
    # n_iterations means about the same amount of exploration in both modes.
    n0 = SuccessiveHalvingIterGenerator(min_budget, max_budget, eta).bracket(0).num_configs[0]
    return ASHAIterGenerator(min_budget, max_budget, eta, max_configs=n0)


class FrontEnd(Master):
    """A Master with the keywords users pass the front ends (HpBandSter's: docs/master.md, "The
    front ends' keywords"); the executor is ``dispatcher_for(run_id, <PYRO_KEYWORDS>)`` unless
    given. Any other keyword is the Master's."""

    def __init__(self, run_id: Any, optimizer: optimizers.BaseOptimizer,
                 iter_generator: BaseIterGenerator, *, executor: Any = None,
                 retry: RetryPolicy | None = None,
                 checkpoint_file: Any = None, checkpoint_freq: int = 10, resume: bool = False,
                 overwrite: bool = False, job_queue_sizes: tuple[int, int] = (-1, 0),
                 dynamic_queue_size: bool = True, shutdown_workers: bool = True,
                 previous_result: Result | None = None, incumbents: dict | None = None,
                 incumbent_performances: dict | None = None, logger: Any = None,
                 **master: Any):
        if logger is not None:
            self.logger = logger
        pyro = {name: master.pop(name) for name in PYRO_KEYWORDS if name in master}
        if executor is None:
            executor = dispatcher_for(run_id, **pyro)
        elif pyro:
            raise ConfigurationError(f"{', '.join(pyro)} configure the Pyro dispatcher, and an "
                                     "executor was given: they would do nothing; give them to "
                                     "the executor")
        existing = "resume" if resume else "overwrite" if overwrite else "refuse"
        super().__init__(run_id, optimizer, iter_generator, executor, journal=checkpoint_file,
                         existing=existing, **master)
        self.journal.fsync_every = max(1, int(checkpoint_freq))
        self.set_job_queue_sizes(job_queue_sizes, dynamic_queue_size)
        if retry is not None:
            self.executor.retry = retry
        self.shutdown_workers = shutdown_workers
        self.best = Incumbents(incumbent_performances, incumbents)
        if previous_result is not None:
            self.warm_start(previous_result)


class BOHB(FrontEnd):
    """BOHB (Falkner et al. 2018): Hyperband with a model-based (KDE) sampler.

    Args:
        configspace (ConfigurationSpace): The configuration space to search.
        run_id (Any): The run's id; its name server, workers and master share it.
        min_budget (float): The smallest budget a configuration is run on.
        max_budget (float): The largest budget.
        eta (float): Successive halving keeps the best 1/eta of each stage and multiplies the
            budget by eta.
        seed (int | None): Seed of the optimizer's sampler.
        min_points_in_model (int | None): Results a budget needs before its model is used
            (default: the number of parameters + 1).
        top_n_percent (float): Percentage of the results that make the model of good
            configurations.
        num_samples (int): Candidates drawn from the model for each pick.
        random_fraction (float): Fraction of configurations sampled at random.
        bandwidth_factor (float): Widens the model's kernels when candidates are drawn.
        min_bandwidth (float): Floor of the kernel bandwidths (docs/optimizers.md).
        asha (bool): Asynchronous successive halving instead (``iterations="asha"``).
        iterations (str | None): The schedule: ``"hyperband"``, ``"successive_halving"``,
            ``"adaptive"`` or ``"asha"``.
        bracket_formula (str): ``"paper"`` (Hyperband's bracket sizes) or ``"hpbandster"``
            (HpBandSter's, one more configuration in some brackets; docs/iterations.md).
        **kwargs: The front ends' keywords (``nameserver``, ``secret``, ``prefetch``,
            ``resume``, ... : docs/master.md) and any argument of
            [Master][ultrarun.master.Master] (``result_logger``, ``working_directory``, ...).
    """

    def __init__(self, configspace: ConfigurationSpace, *, run_id: Any = "0",
                 min_budget: float = 0.01, max_budget: float = 1, eta: float = 3,
                 min_points_in_model: int | None = None, top_n_percent: float = 15,
                 num_samples: int = 64, random_fraction: float = 1 / 3,
                 bandwidth_factor: float = 3, min_bandwidth: float = 0.03,
                 seed: int | None = None, asha: bool = False, iterations: str | None = None,
                 bracket_formula: str = "paper", **kwargs: Any):
        optimizer = optimizers.BOHB(configspace, seed=seed,
                                    min_points_in_model=min_points_in_model,
                                    top_n_percent=top_n_percent, num_samples=num_samples,
                                    random_fraction=random_fraction,
                                    bandwidth_factor=bandwidth_factor, min_bandwidth=min_bandwidth)
        super().__init__(run_id, optimizer, _generator(min_budget, max_budget, eta, asha,
                                                       iterations, bracket_formula), **kwargs)


def _optimizer(cls: type, configspace: ConfigurationSpace, seed: int | None,
               kwargs: dict[str, Any]) -> optimizers.BaseOptimizer:
    """``cls(configspace, seed=seed, ...)``, its other arguments taken out of a front end's
    ``kwargs``."""
    names = set(inspect.signature(cls).parameters) - {"configspace", "seed"}
    return cls(configspace, seed=seed, **{n: kwargs.pop(n) for n in list(kwargs) if n in names})


class TPE(FrontEnd):
    """Multivariate TPE (``ultrarun.optimizers.TPE``, Optuna's sampler) on successive halving
    that starts higher where small budgets mislead (``iterations="adaptive"`` unless told
    otherwise): the default of [minimize][ultrarun.frontends.minimize].

    Args:
        configspace (ConfigurationSpace): The configuration space to search.
        run_id (Any): The run's id; its name server, workers and master share it.
        min_budget (float): The smallest budget a configuration is run on.
        max_budget (float): The largest budget.
        eta (float): Successive halving keeps the best 1/eta of each stage and multiplies the
            budget by eta.
        seed (int | None): Seed of the optimizer's sampler.
        asha (bool): Asynchronous successive halving instead (``iterations="asha"``).
        iterations (str | None): The schedule: ``"adaptive"`` (the default),
            ``"hyperband"``, ``"successive_halving"`` or ``"asha"``.
        bracket_formula (str): ``"paper"`` (Hyperband's bracket sizes) or ``"hpbandster"``
            (HpBandSter's, one more configuration in some brackets; docs/iterations.md).
        **kwargs: The optimizer's arguments (``n_startup_trials``, ``prior_weight``,
            ``constant_liar``, ``fidelity``: on ASHA ``"rank"`` unless given), the front ends'
            keywords and any argument of [Master][ultrarun.master.Master].
    """

    def __init__(self, configspace: ConfigurationSpace, *, run_id: Any = "0",
                 min_budget: float = 0.01, max_budget: float = 1, eta: float = 3,
                 seed: int | None = None, asha: bool = False, iterations: str | None = None,
                 bracket_formula: str = "paper", **kwargs: Any):
        if iterations is None and not asha:
            iterations = DEFAULT_ITERATIONS
        if asha or iterations == "asha":
            # ASHA's rungs are not brackets' stages: ranking each budget's results was worse
            # there (docs/optimizers.md), so ASHA keeps the ranking by budget reached
            kwargs.setdefault("fidelity", "rank")
        optimizer = _optimizer(optimizers.TPE, configspace, seed, kwargs)
        super().__init__(run_id, optimizer, _generator(min_budget, max_budget, eta, asha,
                                                       iterations, bracket_formula), **kwargs)


class DEHB(FrontEnd):
    """Differential evolution (``ultrarun.optimizers.DEHB``) on Hyperband brackets.

    Args:
        configspace (ConfigurationSpace): The configuration space to search.
        run_id (Any): The run's id; its name server, workers and master share it.
        min_budget (float): The smallest budget a configuration is run on.
        max_budget (float): The largest budget.
        eta (float): Successive halving keeps the best 1/eta of each stage and multiplies the
            budget by eta.
        seed (int | None): Seed of the optimizer's sampler.
        asha (bool): Asynchronous successive halving instead (``iterations="asha"``).
        iterations (str | None): The schedule: ``"hyperband"``, ``"successive_halving"``,
            ``"adaptive"`` or ``"asha"``.
        bracket_formula (str): ``"paper"`` (Hyperband's bracket sizes) or ``"hpbandster"``
            (HpBandSter's, one more configuration in some brackets; docs/iterations.md).
        **kwargs: The optimizer's arguments (``population_size``, ``mutation_factor``,
            ``crossover_prob``), the front ends' keywords and any argument of
            [Master][ultrarun.master.Master].
    """

    def __init__(self, configspace: ConfigurationSpace, *, run_id: Any = "0",
                 min_budget: float = 0.01, max_budget: float = 1, eta: float = 3,
                 seed: int | None = None, asha: bool = False, iterations: str | None = None,
                 bracket_formula: str = "paper", **kwargs: Any):
        optimizer = _optimizer(optimizers.DEHB, configspace, seed, kwargs)
        super().__init__(run_id, optimizer, _generator(min_budget, max_budget, eta, asha,
                                                       iterations, bracket_formula), **kwargs)


class HyperBand(FrontEnd):
    """Hyperband (Li et al. 2018): successive-halving brackets with random sampling.

    Args:
        configspace (ConfigurationSpace): The configuration space to search.
        run_id (Any): The run's id; its name server, workers and master share it.
        min_budget (float): The smallest budget a configuration is run on.
        max_budget (float): The largest budget.
        eta (float): Successive halving keeps the best 1/eta of each stage and multiplies the
            budget by eta.
        seed (int | None): Seed of the optimizer's sampler.
        asha (bool): Asynchronous successive halving instead (``iterations="asha"``).
        iterations (str | None): The schedule: ``"hyperband"``, ``"successive_halving"``,
            ``"adaptive"`` or ``"asha"``.
        bracket_formula (str): ``"paper"`` (Hyperband's bracket sizes) or ``"hpbandster"``
            (HpBandSter's, one more configuration in some brackets; docs/iterations.md).
        **kwargs: The front ends' keywords (``nameserver``, ``secret``, ``prefetch``,
            ``resume``, ... : docs/master.md) and any argument of
            [Master][ultrarun.master.Master] (``result_logger``, ``working_directory``, ...).
    """

    def __init__(self, configspace: ConfigurationSpace, *, run_id: Any = "0",
                 min_budget: float = 0.01, max_budget: float = 1, eta: float = 3,
                 seed: int | None = None, asha: bool = False, iterations: str | None = None,
                 bracket_formula: str = "paper", **kwargs: Any):
        optimizer = optimizers.RandomSearch(configspace, seed=seed)
        super().__init__(run_id, optimizer, _generator(min_budget, max_budget, eta, asha,
                                                       iterations, bracket_formula), **kwargs)


class RandomSearch(FrontEnd):
    """Random configurations at ``max_budget``, as many per iteration as Hyperband's largest
    bracket has (HpBandSter's RandomSearch).

    Args:
        configspace (ConfigurationSpace): The configuration space to search.
        run_id (Any): The run's id; its name server, workers and master share it.
        min_budget (float): Only sets how many configurations an iteration has.
        max_budget (float): The largest budget.
        eta (float): Successive halving keeps the best 1/eta of each stage and multiplies the
            budget by eta.
        seed (int | None): Seed of the optimizer's sampler.
        **kwargs: The front ends' keywords (``nameserver``, ``secret``, ``prefetch``,
            ``resume``, ... : docs/master.md) and any argument of
            [Master][ultrarun.master.Master] (``result_logger``, ``working_directory``, ...).
    """

    def __init__(self, configspace: ConfigurationSpace, *, run_id: Any = "0",
                 min_budget: float = 1, max_budget: float = 1, eta: float = 3,
                 seed: int | None = None, **kwargs: Any):
        n = (max_bracket_index(min_budget, max_budget, eta) + 1) if min_budget < max_budget else 1
        optimizer = optimizers.RandomSearch(configspace, seed=seed)
        super().__init__(run_id, optimizer, CustomIterGenerator([max_budget], [n]), **kwargs)


__all__ = ["BOHB", "TPE", "DEHB", "HyperBand", "RandomSearch"]

#: ``minimize(method=...)`` -> front end
METHODS = {"tpe": TPE, "bohb": BOHB, "dehb": DEHB, "hyperband": HyperBand,
           "random": RandomSearch}


def minimize(fn: Any, configspace: ConfigurationSpace, min_budget: float, max_budget: float,
             n_workers: int = 4, n_iterations: int = 4, method: str = DEFAULT_METHOD,
             eta: float = 3, asha: bool = False, iterations: str | None = None,
             seed: int | None = None, result_directory: Any = None,
             time_left_for_this_task: float = float("inf"), concurrent_type: str = "thread",
             startup_timeout: float = 120.0, **master_kwargs: Any):
    """Minimise ``fn(config, budget) -> loss or dict`` with local worker processes.

    Starts an embedded name server and ``n_workers`` processes, runs the optimisation and
    returns its result. Worker processes import ``fn`` by name, so define it with ``def`` at
    module level, and call ``minimize`` under ``if __name__ == "__main__":`` (both are checked
    at once). A worker process that dies before it registers, or workers that have not all
    registered after ``startup_timeout`` seconds, raise an error instead of a wait.

    Args:
        fn (Callable): ``fn(config, budget)`` returning the loss, or a dict with ``"loss"`` and
            ``"info"``.
        configspace (ConfigurationSpace): The configuration space to search.
        min_budget (float): The smallest budget a configuration is run on.
        max_budget (float): The largest budget.
        n_workers (int): Worker processes to start.
        n_iterations (int): Iterations of the schedule (brackets) to run.
        method (str): ``"tpe"`` (TPE on adaptive successive halving: no tuning needed, see
            docs/optimizers.md), ``"bohb"``, ``"dehb"``, ``"hyperband"`` or ``"random"``.
        eta (float): Successive halving keeps the best 1/eta of each stage.
        asha (bool): Asynchronous successive halving.
        iterations (str | None): Overrides the method's schedule: ``"hyperband"``,
            ``"successive_halving"``, ``"adaptive"`` or ``"asha"``.
        seed (int | None): Seed of the optimizer's sampler.
        result_directory (str | PathLike | None): Write HpBandSter-style logs
            (``configs.json``, ``results.json``) and the journal there; each call starts over.
        time_left_for_this_task (float): Seconds; no job starts that would end later.
        concurrent_type (str): ``"thread"`` or ``"process"``: where a worker runs ``fn``.
        startup_timeout (float): Seconds the worker processes have to register.
        **master_kwargs: Any other argument of the method's master (e.g. ``resume``).

    Returns:
        Result: The run's result; ``result.best_config()`` gives the best configuration.

    Raises:
        ConfigurationError: ``fn`` cannot be imported by worker processes, or an argument is
            invalid.
        UltrarunError: A worker process died before it registered, or the workers did not
            register in time.
    """
    from .local import LocalCluster
    from .local import log as local_log
    from .progress import ensure_logging
    from .results import json_result_logger

    ensure_logging(local_log, all_of_ultrarun=False)  # what it does while the workers start

    if method not in METHODS:
        raise ConfigurationError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    kwargs: dict[str, Any] = dict(min_budget=min_budget, max_budget=max_budget, eta=eta, seed=seed,
                                  time_left_for_this_task=time_left_for_this_task, **master_kwargs)
    if method != "random":
        kwargs["asha"] = asha
        if iterations is not None:
            kwargs["iterations"] = iterations
    with LocalCluster(n_workers=n_workers, eval_func=fn, concurrent_type=concurrent_type,
                      startup_timeout=startup_timeout) as cluster:
        if result_directory is not None:  # each call is a new run: it starts over there
            kwargs.setdefault("result_logger", json_result_logger(result_directory))
            kwargs.setdefault("working_directory", result_directory)
            kwargs.setdefault("overwrite", not kwargs.get("resume", False))
        else:
            kwargs.setdefault("working_directory", cluster.working_directory)
        master = METHODS[method](configspace, run_id=cluster.run_id, secret=cluster.secret,
                                 nameserver=cluster.nameserver.host,
                                 nameserver_port=cluster.nameserver_port, **kwargs)
        try:
            return master.run(n_iterations=n_iterations, min_n_workers=1)
        finally:
            master.shutdown(shutdown_workers=True)


__all__ += ["minimize"]
