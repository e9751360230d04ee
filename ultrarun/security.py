"""Run secrets and the credentials file: who may talk to a run, and how a node finds it.

Every party of a run shares one secret, used as the HMAC key of every Pyro message. Where none is
given (argument, ``ULTRARUN_SECRET``, credentials file), a per-user secret from a 0600 file in the
home directory is used, so the same user's processes agree without configuration and other
users' processes are refused.
"""
from __future__ import annotations

import json
import logging
import os
import secrets as _secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from .config import config
from .errors import ConfigurationError

log = logging.getLogger(__name__)

_CREDENTIALS_NAME = "ultrarun_run_{run_id}.json"
_known_lock = threading.Lock()
_known_secrets: dict[int, str] = {}


@dataclass(frozen=True)
class Credentials:
    """What a worker on another node needs to join a run (the credentials file's content)."""

    host: str
    port: int
    run_id: str
    secret: str

    def write(self, directory: str | os.PathLike) -> Path:
        """Write the file with mode 0600, atomically (a reader never sees half a file)."""
        path = credentials_path(directory, self.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh)
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, directory: str | os.PathLike, run_id: str) -> "Credentials":
        """Read the credentials file of ``run_id``; raises ``FileNotFoundError`` if absent."""
        path = credentials_path(directory, run_id)
        with open(path) as fh:
            data = json.load(fh)
        try:
            return cls(host=str(data["host"]), port=int(data["port"]), run_id=str(data["run_id"]),
                       secret=str(data["secret"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{path} is not an ultrarun credentials file: {exc}") from None


def credentials_path(directory: str | os.PathLike, run_id: str) -> Path:
    return Path(directory) / _CREDENTIALS_NAME.format(run_id=run_id)


def new_secret() -> str:
    return _secrets.token_urlsafe(32)


def user_secret(path: str | os.PathLike | None = None) -> str:
    """The per-user secret, created (mode 0600, directory 0700) on first use."""
    file = Path(os.path.expanduser(str(path or config.SECRET_FILE)))
    try:
        text = file.read_text().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = new_secret()
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use theirs
        for _ in range(100):
            text = file.read_text().strip()
            if text:
                return text
            threading.Event().wait(0.01)
        raise ConfigurationError(f"the secret file {file} exists but is empty") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    log.info("created the per-user ultrarun secret in %s", file)
    return secret


def remember_secret(port: int, secret: str) -> None:
    """Note the secret of a name server started in this process (see :func:`resolve_secret`)."""
    with _known_lock:
        _known_secrets[int(port)] = secret


def forget_secret(port: int) -> None:
    with _known_lock:
        _known_secrets.pop(int(port), None)


def resolve_secret(secret: str | None = None, nameserver_port: int | None = None) -> str:
    """The secret to use: explicit argument, a name server of this process on that port,
    ``ULTRARUN_SECRET``, then the per-user secret."""
    if secret:
        return secret
    if nameserver_port is not None:
        with _known_lock:
            known = _known_secrets.get(int(nameserver_port))
        if known:
            return known
    if config.SECRET:
        return config.SECRET
    return user_secret()


__all__ = ["Credentials", "credentials_path", "new_secret", "user_secret", "resolve_secret"]
