"""Ready-made masters for the common cases, with HpBandSter's names and arguments.

``BOHB(configspace, run_id, min_budget, max_budget, eta)`` is HpBandSter's BOHB: Hyperband
brackets with the BOHB sampler; ``HyperBand`` samples at random; ``RandomSearch`` evaluates random
configurations at the largest budget. ``asha=True`` swaps the synchronous brackets for
asynchronous successive halving (every worker stays busy).
"""
from __future__ import annotations

from typing import Any

from ConfigSpace import ConfigurationSpace

from . import optimizers
from .iterations import (ASHAIterGenerator, BaseIterGenerator, CustomIterGenerator,
                         HyperBandIterGenerator, max_bracket_index)
from .iterations import bracket as hb_bracket
from .master import Master


def _generator(min_budget: float, max_budget: float, eta: float, asha: bool) -> BaseIterGenerator:
    if not asha:
        return HyperBandIterGenerator(min_budget, max_budget, eta)
    # One ASHA iteration samples as many configs as Hyperband's most aggressive bracket, so
    # n_iterations means about the same amount of exploration in both modes.
    s_max = max_bracket_index(min_budget, max_budget, eta)
    n0 = hb_bracket(s_max, s_max, max_budget, eta, min_budget).num_configs[0]
    return ASHAIterGenerator(min_budget, max_budget, eta, max_configs=n0)


class BOHB(Master):
    """BOHB (Falkner et al. 2018): Hyperband with a model-based (KDE) sampler."""

    def __init__(self, configspace: ConfigurationSpace, run_id: Any = "0",
                 min_budget: float = 0.01, max_budget: float = 1, eta: float = 3,
                 min_points_in_model: int | None = None, top_n_percent: float = 15,
                 num_samples: int = 64, random_fraction: float = 1 / 3,
                 bandwidth_factor: float = 3, min_bandwidth: float = 0.03,
                 seed: int | None = None, asha: bool = False, **kwargs: Any):
        optimizer = optimizers.BOHB(configspace, seed=seed,
                                    min_points_in_model=min_points_in_model,
                                    top_n_percent=top_n_percent, num_samples=num_samples,
                                    random_fraction=random_fraction,
                                    bandwidth_factor=bandwidth_factor, min_bandwidth=min_bandwidth)
        super().__init__(run_id, optimizer, _generator(min_budget, max_budget, eta, asha),
                         **kwargs)


class HyperBand(Master):
    """Hyperband (Li et al. 2018): successive-halving brackets with random sampling."""

    def __init__(self, configspace: ConfigurationSpace, run_id: Any = "0",
                 min_budget: float = 0.01, max_budget: float = 1, eta: float = 3,
                 seed: int | None = None, asha: bool = False, **kwargs: Any):
        optimizer = optimizers.RandomSearch(configspace, seed=seed)
        super().__init__(run_id, optimizer, _generator(min_budget, max_budget, eta, asha),
                         **kwargs)


class RandomSearch(Master):
    """Random configurations at ``max_budget``, as many per iteration as Hyperband's largest
    bracket has (HpBandSter's RandomSearch)."""

    def __init__(self, configspace: ConfigurationSpace, run_id: Any = "0",
                 min_budget: float = 1, max_budget: float = 1, eta: float = 3,
                 seed: int | None = None, **kwargs: Any):
        n = (max_bracket_index(min_budget, max_budget, eta) + 1) if min_budget < max_budget else 1
        optimizer = optimizers.RandomSearch(configspace, seed=seed)
        super().__init__(run_id, optimizer, CustomIterGenerator([max_budget], [n]), **kwargs)


__all__ = ["BOHB", "HyperBand", "RandomSearch"]


def minimize(fn: Any, configspace: ConfigurationSpace, min_budget: float, max_budget: float,
             n_workers: int = 4, n_iterations: int = 4, method: str = "bohb", eta: float = 3,
             asha: bool = False, seed: int | None = None, result_directory: Any = None,
             time_left_for_this_task: float = float("inf"), concurrent_type: str = "thread",
             **master_kwargs: Any):
    """Minimise ``fn(config, budget) -> loss or dict`` with local worker processes.

    Starts an embedded name server and ``n_workers`` processes, runs ``n_iterations`` of BOHB
    (``method="bohb"``), Hyperband (``"hyperband"``) or random search (``"random"``), and returns
    the :class:`~ultrarun.results.Result`. ``fn`` must be importable (a module-level function).
    With ``result_directory``, HpBandSter-style logs (configs.json, results.json) are written there.
    """
    from .errors import ConfigurationError
    from .local import LocalCluster
    from .results import json_result_logger

    fronts = {"bohb": BOHB, "hyperband": HyperBand, "random": RandomSearch}
    if method not in fronts:
        raise ConfigurationError(f"method must be one of {sorted(fronts)}, got {method!r}")
    kwargs: dict[str, Any] = dict(min_budget=min_budget, max_budget=max_budget, eta=eta, seed=seed,
                                  time_left_for_this_task=time_left_for_this_task, **master_kwargs)
    if method != "random":
        kwargs["asha"] = asha
    with LocalCluster(n_workers=n_workers, eval_func=fn,
                      concurrent_type=concurrent_type) as cluster:
        if result_directory is not None:
            kwargs.setdefault("result_logger", json_result_logger(result_directory, overwrite=True))
            kwargs.setdefault("working_directory", result_directory)
        else:
            kwargs.setdefault("working_directory", cluster.working_directory)
        master = fronts[method](configspace, run_id=cluster.run_id, nameserver=cluster.nameserver.host,
                                nameserver_port=cluster.nameserver_port, secret=cluster.secret,
                                **kwargs)
        try:
            return master.run(n_iterations=n_iterations, min_n_workers=1)
        finally:
            master.shutdown(shutdown_workers=True)


__all__ += ["minimize"]
