"""Asynchronous successive halving (ASHA): promote as soon as a config is good enough.

Li, Jamieson, Rostamizadeh, Gonina, Ben-Tzur, Hardt, Recht and Talwalkar, "A System for Massively
Parallel Hyperparameter Tuning", MLSys 2020, Algorithm 2.
"""
from __future__ import annotations

import heapq
import logging
import math
from numbers import Integral
from typing import Sequence

from ..errors import ConfigurationError
from ._base import BaseIteration, BaseIterGenerator, ConfigId, ConfigStatus, Datum, Fits, Run, Sampler
from ._budgets import bracket, max_bracket_index, validate_eta

logger = logging.getLogger(__name__)


def _validate_limit(name: str, value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ConfigurationError(f"{name} is {value!r}; it must be a positive integer or None "
                                 "(no limit)")
    return int(value)


class ASHA(BaseIteration):
    """One never-blocking ASHA run over the rungs ``budgets``.

    ``get_next_run`` promotes a configuration one rung up as soon as it is among the best
    ``1/eta`` of the results at its rung (highest rung first); otherwise it samples a new
    configuration at the lowest rung. It returns None only once ``max_configs`` or ``max_jobs``
    stop it from growing (or nothing fits the time left); it is finished when it cannot grow and
    nothing is running. Without limits it grows until the master's time is up.

    Args:
        iteration (int): The iteration's index; the first element of its config ids.
        budgets (Sequence[float]): The rungs, strictly increasing.
        sampler (Sampler): ``sampler(budget, n) -> [(config, config_info), ...]``: where new
            configurations come from (the master passes its optimizer's).
        eta (float): A configuration is promoted when among the best 1/eta of its rung.
        max_configs (int | None): Stop sampling new configurations after this many (None: no
            limit).
        max_jobs (int | None): Stop after this many jobs (None: no limit).
    """

    def __init__(self, iteration: int, budgets: Sequence[float], sampler: Sampler,
                 eta: float = 3, max_configs: int | None = None,
                 max_jobs: int | None = None) -> None:
        super().__init__(iteration, sampler)
        self.eta = validate_eta(eta)
        self.budgets = [float(b) for b in budgets]
        if not self.budgets or any(b <= a for a, b in zip(self.budgets, self.budgets[1:])):
            raise ConfigurationError(f"budgets is {budgets!r}; give at least one rung, "
                                     "strictly increasing")
        self.max_configs = _validate_limit("max_configs", max_configs)
        self.max_jobs = _validate_limit("max_jobs", max_jobs)
        #: finished results per rung: config id -> loss (+inf for failures)
        self.rungs: list[dict[ConfigId, float]] = [{} for _ in self.budgets]
        #: successful results per rung not promoted yet, (loss, config id): a heap, the best
        #: first (ties break the same way)
        self._waiting: list[list[tuple[float, ConfigId]]] = [[] for _ in self.budgets]
        #: those promoted, split at the rung's top (floor(results / eta)): the best ``top`` of
        #: them, (-loss, -index, config id), the worst first; and the rest, (loss, config id),
        #: the best first (two heaps: a promotion is O(log n), where a sorted list's is O(n))
        self._inner: list[list[tuple[float, int, ConfigId]]] = [[] for _ in self.budgets]
        self._outer: list[list[tuple[float, ConfigId]]] = [[] for _ in self.budgets]
        self.promoted: list[set[ConfigId]] = [set() for _ in self.budgets]
        self.num_sampled = 0
        self.num_started = 0

    def get_next_run(self, fits: Fits | None = None) -> Run | None:
        if self.is_finished or not self._may_start:
            return None
        candidate = self._promotable(fits)
        if candidate is not None:
            config_id, rung = candidate
            self.promoted[rung].add(config_id)
            loss, _ = heapq.heappop(self._waiting[rung])
            heapq.heappush(self._inner[rung], (-loss, -config_id[2], config_id))
            self._split(rung)
            datum = self.data[config_id]
            datum.budget, datum.status = self.budgets[rung + 1], ConfigStatus.QUEUED
            logger.debug("ASHA %s: promote %s to budget %s", self.iteration, config_id,
                         datum.budget)
        elif self._may_sample and (fits is None or fits(self.budgets[0])):
            config_id = (self.iteration, 0, self.num_sampled)
            self.num_sampled += 1
            self._sample(self.budgets[0], config_id)
        else:
            return None
        self.num_started += 1
        return self._start(config_id)

    @property
    def is_blocked(self) -> bool:
        return not self.is_finished and not (
            self._may_start and (self._may_sample or self._promotable() is not None))

    @property
    def _may_start(self) -> bool:
        return self.max_jobs is None or self.num_started < self.max_jobs

    @property
    def _may_sample(self) -> bool:
        return self.max_configs is None or self.num_sampled < self.max_configs

    def _promotable(self, fits: Fits | None = None) -> tuple[ConfigId, int] | None:
        """The best not yet promoted config in the top 1/eta of a rung, highest rung first
        (skipping rungs whose next budget does not ``fit`` the time left)."""
        for rung in range(len(self.budgets) - 2, -1, -1):
            if not self._waiting[rung] or (fits is not None and not fits(self.budgets[rung + 1])):
                continue
            best_waiting, inner = self._waiting[rung][0], self._inner[rung]
            # its rank among all results of the rung is below top (the others waiting are worse)
            # if fewer than top promoted ones are better: the top-th best promoted is worse
            if self._top(rung) > len(inner) or (inner and best_waiting < (-inner[0][0],
                                                                          inner[0][2])):
                return best_waiting[1], rung
        return None

    def _top(self, rung: int) -> int:
        return math.floor(len(self.rungs[rung]) / self.eta)  # failures count in the rung size

    def _split(self, rung: int) -> None:
        """Keep the best ``top`` promoted results of ``rung`` in the inner heap."""
        top, inner, outer = self._top(rung), self._inner[rung], self._outer[rung]
        while len(inner) > top:
            loss, _, config_id = heapq.heappop(inner)
            heapq.heappush(outer, (-loss, config_id))
        while len(inner) < top and outer:
            loss, config_id = heapq.heappop(outer)
            heapq.heappush(inner, (-loss, -config_id[2], config_id))

    def _on_result(self, config_id: ConfigId, datum: Datum) -> None:
        rung = self.budgets.index(datum.budget)
        loss = datum.loss_for_ranking(datum.budget)
        self.rungs[rung][config_id] = loss
        self._split(rung)
        if math.isfinite(loss) and rung < len(self.budgets) - 1:  # failures are never promoted
            heapq.heappush(self._waiting[rung], (loss, config_id))
        if rung == len(self.budgets) - 1 and datum.status is ConfigStatus.REVIEW:
            datum.status = ConfigStatus.COMPLETED
        if self.num_running == 0 and self.is_blocked:
            self._finish()


class ASHAIterGenerator(BaseIterGenerator):
    """Makes [ASHA][ultrarun.iterations.ASHA] iterations with the rungs of the most aggressive
    Hyperband bracket.

    A master usually runs a single ASHA iteration; give ``max_configs`` or ``max_jobs`` so that
    it ends by itself.

    Args:
        min_budget (float): The lowest rung.
        max_budget (float): The highest rung.
        eta (float): A configuration is promoted when among the best 1/eta of its rung.
        max_configs (int | None): Configurations per iteration (None: no limit).
        max_jobs (int | None): Jobs per iteration (None: no limit).
    """

    def __init__(self, min_budget: float, max_budget: float, eta: float = 3,
                 max_configs: int | None = None, max_jobs: int | None = None) -> None:
        self.eta = validate_eta(eta)
        self.s_max = max_bracket_index(min_budget, max_budget, eta)
        self._budgets = list(bracket(self.s_max, self.s_max, max_budget, eta, min_budget).budgets)
        self.max_configs = _validate_limit("max_configs", max_configs)
        self.max_jobs = _validate_limit("max_jobs", max_jobs)

    @property
    def budgets(self) -> list[float]:
        return list(self._budgets)

    def get_next_iteration(self, iteration: int, sampler: Sampler, **iteration_kwargs) -> ASHA:
        kwargs = {"eta": self.eta, "max_configs": self.max_configs, "max_jobs": self.max_jobs,
                  **iteration_kwargs}
        return ASHA(iteration, self._budgets, sampler, **kwargs)

    def num_jobs(self, iteration: int) -> int | None:
        """``max_jobs``: ASHA's job count depends on the order in which results arrive.

        Args:
            iteration (int): The iteration's index.

        Returns:
            int | None: ``max_jobs`` (None when unbounded).
        """
        return self.max_jobs


__all__ = ["ASHA", "ASHAIterGenerator"]
