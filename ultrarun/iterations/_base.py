"""What every iteration (budget schedule) offers the master, and what every generator offers.

An iteration is a pure state machine: the master asks it for the next run, hands it results, and
asks whether it is finished or blocked. No threads, no I/O: the master owns both.
"""
from __future__ import annotations

import abc
import enum
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import ConfigurationError, JobError
from ..job import ConfigId, JobStatus

logger = logging.getLogger(__name__)

#: ``sampler(budget, n) -> [(config, config_info), ...]``; ``Optimizer.ask`` has this signature.
Sampler = Callable[[float, int], Sequence[tuple[dict[str, Any], dict[str, Any]]]]
#: What ``get_next_run`` hands out: the configuration to run and at which budget.
Run = tuple[ConfigId, dict[str, Any], float]
#: ``fits(budget) -> bool``: whether a job at ``budget`` can still finish in the time left.
Fits = Callable[[float], bool]


class ConfigStatus(enum.Enum):
    """Where a configuration stands inside its iteration."""

    QUEUED = "QUEUED"  # waiting to be handed out by get_next_run
    RUNNING = "RUNNING"  # handed out, no result yet
    REVIEW = "REVIEW"  # result in, waiting for the stage (or rung) to decide on promotion
    TERMINATED = "TERMINATED"  # not promoted
    CRASHED = "CRASHED"  # its last job failed; never promoted
    COMPLETED = "COMPLETED"  # the iteration is over (or the config reached the top budget)


@dataclass
class Datum:
    """Everything an iteration knows about one configuration."""

    config: dict[str, Any]
    config_info: dict[str, Any]
    budget: float
    status: ConfigStatus = ConfigStatus.QUEUED
    #: loss per budget; None where the job failed
    losses: dict[float, float | None] = field(default_factory=dict)
    #: final job status per budget
    job_status: dict[float, JobStatus] = field(default_factory=dict)
    #: result info per budget, as the master passed it in
    info: dict[float, Any] = field(default_factory=dict)

    def loss_for_ranking(self, budget: float) -> float:
        """The loss at ``budget``, with failures (None) counted as +inf."""
        loss = self.losses.get(budget)
        return math.inf if loss is None else loss


def top_k(candidates: Iterable[tuple[ConfigId, float]], k: int) -> list[ConfigId]:
    """The ``k`` best successful config ids, by (loss, config id) so ties break the same way.

    Failed configurations (loss +inf or NaN) are never returned: promoting a crash would only
    crash again at a larger budget.
    """
    ranked = sorted((loss, cid) for cid, loss in candidates if math.isfinite(loss))
    return [cid for _, cid in ranked[:max(k, 0)]]


class BaseIteration(abc.ABC):
    """One iteration (HpBandSter's ``BaseIteration``): configs, their budgets and their results.

    Drive it with ``get_next_run`` and ``register_result``; it is done when ``is_finished``.
    When ``is_blocked``, it waits for running jobs and the master may start the next iteration
    so free workers are not idle.

    Args:
        iteration (int): The iteration's index; the first element of its config ids.
        sampler (Sampler): ``sampler(budget, n) -> [(config, config_info), ...]``: where new
            configurations come from (the master passes its optimizer's).
    """

    def __init__(self, iteration: int, sampler: Sampler) -> None:
        if not callable(sampler):
            raise ConfigurationError(f"sampler is {sampler!r}; it must be a callable "
                                     "sampler(budget, n) -> [(config, config_info), ...]")
        self.iteration = int(iteration)
        self.sampler = sampler
        self.data: dict[ConfigId, Datum] = {}
        #: ``(config, config_info)`` decided before (a resumed run's journal): taken, not sampled
        self.decided: Mapping[ConfigId, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.num_running = 0
        self.is_finished = False

    # -- the master's API -------------------------------------------------------------------
    @abc.abstractmethod
    def get_next_run(self, fits: Fits | None = None) -> Run | None:
        """The next ``(config_id, config, budget)`` to run, or None while waiting for results.

        Args:
            fits (Fits | None): Only a run whose budget fits is handed out (the master passes its
                deadline estimate, so a run does not start a job that would outlast the time left).

        Returns:
            tuple | None: ``(config_id, config, budget)``, or None.
        """

    @property
    @abc.abstractmethod
    def is_blocked(self) -> bool:
        """True when ``get_next_run`` would return None although the iteration is not over."""

    @property
    def barrier(self) -> tuple[float, int] | None:
        """At a barrier: (its budget, jobs it releases minus jobs running); None otherwise."""
        return None

    def register_result(self, config_id: ConfigId, budget: float, loss: float | None,
                        status: JobStatus = JobStatus.SUCCESS, info: Any = None) -> None:
        """Record the result of a run handed out by ``get_next_run``.

        A failed run counts as +inf: the stage still completes, and the configuration is never
        promoted.

        Args:
            config_id (ConfigId): The run's configuration.
            budget (float): The run's budget.
            loss (float | None): Its loss; None or NaN counts as a failure.
            status (JobStatus): Its final status; CRASHED, TIMEOUT, LOST, ... count as failures.
            info (Any): What the compute returned besides the loss.
        """
        datum = self.data.get(tuple(config_id))  # type: ignore[arg-type]
        if datum is None:
            raise JobError(f"config id {config_id!r} is not part of iteration {self.iteration}")
        if datum.status is not ConfigStatus.RUNNING or not math.isclose(budget, datum.budget):
            raise JobError(f"unexpected result for {config_id!r} at budget {budget!r}: the config "
                           f"is {datum.status.name} at budget {datum.budget!r}")
        status = status if isinstance(status, JobStatus) else JobStatus(status)
        if not status.is_final:
            raise JobError(f"result for {config_id!r} has status {status.name}; expected a "
                           "final status (SUCCESS, CRASHED, TIMEOUT, MEMOUT, LOST, CANCELLED)")
        failed = status.failed or loss is None or math.isnan(loss)
        datum.losses[datum.budget] = None if failed else float(loss)  # type: ignore[arg-type]
        datum.job_status[datum.budget] = status
        datum.info[datum.budget] = info
        datum.status = ConfigStatus.CRASHED if failed else ConfigStatus.REVIEW
        self.num_running -= 1
        logger.debug("iteration %s: %s at budget %s -> loss %s (%s)", self.iteration, config_id,
                     datum.budget, loss, status.name)
        self._on_result(tuple(config_id), datum)  # type: ignore[arg-type]

    def _on_result(self, config_id: ConfigId, datum: Datum) -> None:
        """Hook for subclasses that react to each result (ASHA)."""

    # -- shared helpers ---------------------------------------------------------------------
    def _sample(self, budget: float, config_id: ConfigId) -> Datum:
        """Ask the sampler for one new configuration at ``budget`` (unless it was decided
        before) and queue it."""
        decided = self.decided.get(config_id)
        samples = [decided] if decided is not None else list(self.sampler(budget, 1))
        if len(samples) != 1:
            raise ConfigurationError(f"sampler returned {len(samples)} configurations for n=1")
        config, config_info = samples[0]
        datum = Datum(config=dict(config), config_info=dict(config_info or {}), budget=budget)
        self.data[config_id] = datum
        return datum

    def _start(self, config_id: ConfigId) -> Run:
        datum = self.data[config_id]
        datum.status = ConfigStatus.RUNNING
        self.num_running += 1
        return config_id, datum.config, datum.budget

    def _finish(self) -> None:
        for datum in self.data.values():
            if datum.status is not ConfigStatus.RUNNING:
                datum.status = ConfigStatus.COMPLETED
        self.is_finished = True
        logger.info("iteration %s finished with %d configurations", self.iteration,
                    len(self.data))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(iteration={self.iteration}, configs={len(self.data)}, "
                f"running={self.num_running}, finished={self.is_finished})")


class BaseIterGenerator(abc.ABC):
    """Makes the iterations a master runs, one per iteration index."""

    @abc.abstractmethod
    def get_next_iteration(self, iteration: int, sampler: Sampler,
                           **iteration_kwargs: Any) -> BaseIteration:
        """The iteration with index ``iteration``.

        Args:
            iteration (int): Its index (0, 1, 2, ...).
            sampler (Sampler): ``sampler(budget, n) -> [(config, config_info), ...]``.
            **iteration_kwargs: Passed to the iteration's constructor.

        Returns:
            BaseIteration: The iteration.
        """

    @property
    @abc.abstractmethod
    def budgets(self) -> list[float]:
        """Every budget this generator uses, ascending, as plain floats."""

    @abc.abstractmethod
    def num_jobs(self, iteration: int) -> int | None:
        """Jobs an iteration runs if nothing fails.

        Args:
            iteration (int): The iteration's index.

        Returns:
            int | None: The number of jobs (None when unbounded).
        """


__all__ = ["BaseIteration", "BaseIterGenerator", "ConfigId", "ConfigStatus", "Datum", "Fits", "Run",
           "Sampler", "top_k"]
