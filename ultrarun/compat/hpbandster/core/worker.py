"""``hpbandster.core.worker``: the worker with HpBandSter's positional order; ultrarun's own
options (``secret``, ``time_limit``, ``memory_limit``, ...) may be added as keywords.
``nameserver_port=None`` means Pyro's default port (``PYRO_NS_PORT`` or 9090), as in
HpBandSter, and ``timeout`` counts from the last finished job, as in HpBandSter: a worker
started long before its master waits for it. Override ``compute(config_id, config, budget, working_directory)``.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from ultrarun import worker as _native
from ultrarun.compat import pyro_port

#: attributes of HpBandSter's own Worker, rebuilt (not copied) when one is unpickled
_HPBANDSTER_STATE = frozenset({"run_id", "host", "nameserver", "nameserver_port", "worker_id",
                               "timeout", "timer", "thread", "logger", "busy", "thread_cond",
                               "pyro_daemon"})


class Worker(_native.Worker):
    """An ultrarun worker constructed with HpBandSter's arguments."""

    timeout_before_first_job = False  # the clock starts when a job finishes, as there

    def __init__(self, run_id: Any, nameserver: str | None = None,
                 nameserver_port: int | None = None, logger: logging.Logger | None = None,
                 host: str | None = None, id: Any = None, timeout: float | None = None,
                 **kwargs: Any):
        super().__init__(run_id, nameserver, pyro_port(nameserver_port), host=host,
                         worker_id=id, timeout=timeout, logger=logger, **kwargs)

    def __setstate__(self, state: dict) -> None:
        if "_rt" in state:  # pickled by ultrarun
            super().__setstate__(state)
            return
        # pickled under HpBandSter (a subclass that made its worker picklable): keep the user's
        # own attributes, rebuild the worker's from the arguments it was made with
        # HpBandSter's name is hpbandster.run_<run_id>.worker.<host>.<pid>[.<id>]
        named = re.match(r".*?\.worker\..*?\.\d+\.(.+)$", str(state.get("worker_id", "")))
        _native.Worker.__init__(self, state["run_id"], state.get("nameserver"),
                                state.get("nameserver_port"), host=state.get("host"),
                                worker_id=named.group(1) if named else None,
                                timeout=state.get("timeout"))
        self.__dict__.update({k: v for k, v in state.items() if k not in _HPBANDSTER_STATE})


__all__ = ["Worker"]
