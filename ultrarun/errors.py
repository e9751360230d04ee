"""Every exception ultrarun raises, under one base class.

Catch ``UltrarunError`` to handle anything from the library; the subclasses say which part
failed (configuration, communication, the name server, a job).
"""
from __future__ import annotations

from typing import Any


class UltrarunError(Exception):
    """Base class of all ultrarun errors."""


class ConfigurationError(UltrarunError, ValueError):
    """An argument or setting is invalid; the message says what is allowed."""


class UnsafeFileError(ConfigurationError):
    """A file in a shared directory is refused: a link, or a file holding a secret that is not a
    regular file of this user readable by them alone (someone else may know or change it)."""


class CommunicationError(UltrarunError):
    """A remote call failed: the peer is gone, unreachable or did not answer in time."""


class CommunicationTimeout(CommunicationError):
    """A remote call got no answer within the communication timeout."""


class AuthenticationError(CommunicationError):
    """The peer refused us (or we refused it) because the run secrets differ."""


class NameServerError(CommunicationError):
    """The name server cannot be reached, or a name is not registered there."""


class RecordingError(UltrarunError):
    """The master could not record a result (its journal or result logger failed: a full disk,
    an unwritable file); the run stops. The message names the job and the cause."""


class JobError(UltrarunError):
    """A job or its result is invalid."""


class ResultError(JobError):
    """A compute result cannot be used or cannot travel; the message names the offending field."""


class JobFailed(JobError):
    """Raised by a compute to end its job with ``status`` (CRASHED, TIMEOUT or MEMOUT) and this
    message, e.g. a compute that enforces its own time limit. ``info`` (plain data) travels
    with it as data: the job's ``info``."""

    def __init__(self, status: Any, message: str = "", info: Any = None):
        super().__init__(message or getattr(status, "name", str(status)))
        self.status = status
        self.info = info


class NoSuccessfulRunError(JobError, KeyError):
    """No run finished with a loss, so a result has no best configuration and no incumbent; the
    message counts the failures by status, quotes their errors and shows the first one's
    traceback. A ``KeyError`` too, as ``get_id2config_mapping()[None]`` was in HpBandSter."""

    def __str__(self) -> str:  # KeyError would print the repr of its argument
        return str(self.args[0]) if self.args else ""


class RunInterrupted(SystemExit):
    """Ctrl-C or SIGTERM stopped a master's run. Not an :class:`UltrarunError`: it is the one
    exception meant to end the program, as ``KeyboardInterrupt`` would, with its message (how
    to resume) instead of a traceback. The workers keep running; the journal has every result
    that came in."""


class FirstRunCrashedException(JobError):
    """The very first trial crashed (opt-in check of the runners: usually a broken target)."""


class TargetAlgorithmAbortException(JobError):
    """The target function asked to stop the whole optimisation."""


__all__ = ["UltrarunError", "ConfigurationError", "UnsafeFileError", "CommunicationError",
           "CommunicationTimeout", "AuthenticationError", "NameServerError", "RecordingError",
           "JobError", "ResultError", "JobFailed", "NoSuccessfulRunError",
           "FirstRunCrashedException", "TargetAlgorithmAbortException", "RunInterrupted"]
