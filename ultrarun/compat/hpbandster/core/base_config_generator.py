"""``hpbandster.core.base_config_generator``: the base of HpBandSter-style samplers.

Subclass it, implement ``get_config(budget) -> (config, info)`` and, for a model,
``new_result(job, update_model=True)``, and hand it to ``hpbandster.core.master.Master``.
"""
from __future__ import annotations

import logging
from typing import Any


class base_config_generator:
    """HpBandSter's config generator interface."""

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or logging.getLogger("hpbandster")

    def get_config(self, budget: float) -> tuple[dict, dict]:
        """A new configuration (a dict) and an info dict for a run at ``budget``."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_config(budget)")

    def new_result(self, job: Any, update_model: bool = True) -> None:
        """A finished job (``job.result`` is None if it failed; ``job.exception`` says why)."""
        if job.exception is not None:
            self.logger.warning("job %s failed with exception\n%s", job.id, job.exception)


__all__ = ["base_config_generator"]
