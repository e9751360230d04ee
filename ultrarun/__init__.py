"""ultrarun: hyperparameter optimisation on many machines (Pyro4 workers, multi-fidelity masters)."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (AuthenticationError, CommunicationError, CommunicationTimeout,
                     ConfigurationError, JobError, NameServerError, ResultError, UltrarunError)
from .job import Job, JobStatus, StatusType

__all__ = [
    "__version__",
    "UltrarunError", "ConfigurationError", "CommunicationError", "CommunicationTimeout",
    "AuthenticationError", "NameServerError", "JobError", "ResultError",
    "Job", "JobStatus", "StatusType",
]
