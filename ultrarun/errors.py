"""Every exception ultrarun raises, under one base class.

Catch :class:`UltrarunError` to handle anything from the library; the subclasses say which part
failed (configuration, communication, the name server, a job).
"""
from __future__ import annotations


class UltrarunError(Exception):
    """Base class of all ultrarun errors."""


class ConfigurationError(UltrarunError, ValueError):
    """An argument or setting is invalid; the message says what is allowed."""


class CommunicationError(UltrarunError):
    """A remote call failed: the peer is gone, unreachable or did not answer in time."""


class CommunicationTimeout(CommunicationError):
    """A remote call got no answer within the communication timeout."""


class AuthenticationError(CommunicationError):
    """The peer refused us (or we refused it) because the run secrets differ."""


class NameServerError(CommunicationError):
    """The name server cannot be reached, or a name is not registered there."""


class JobError(UltrarunError):
    """A job or its result is invalid."""


class ResultError(JobError):
    """A compute result cannot be used or cannot travel; the message names the offending field."""


class FirstRunCrashedException(JobError):
    """The very first trial crashed (opt-in check of the runners: usually a broken target)."""


class TargetAlgorithmAbortException(JobError):
    """The target function asked to stop the whole optimisation."""


__all__ = [
    "UltrarunError",
    "ConfigurationError",
    "CommunicationError",
    "CommunicationTimeout",
    "AuthenticationError",
    "NameServerError",
    "JobError",
    "ResultError",
    "FirstRunCrashedException",
    "TargetAlgorithmAbortException",
]
