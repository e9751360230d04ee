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
import stat
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from ._files import open_nofollow, write_atomic
from .settings import settings
from .errors import ConfigurationError, UnsafeFileError

log = logging.getLogger(__name__)

_CREDENTIALS_NAME = "ultrarun_run_{run_id}.json"
_known_lock = threading.Lock()
_known_secrets: dict[int, str] = {}


@dataclass(frozen=True)
class Credentials:
    """What a worker on another node needs to join a run (the credentials file's content).

    Args:
        host (str): The name server's address.
        port (int): Its port.
        run_id (str): The run's id.
        secret (str): The run secret.
    """

    host: str
    port: int
    run_id: str
    secret: str

    def write(self, directory: str | os.PathLike) -> Path:
        """Write the file with mode 0600, atomically (a reader never sees half a file; see
        ``_files.write_atomic`` for what a planted file or link can do: nothing).

        Args:
            directory (str | PathLike): The run's shared directory.
        """
        path = credentials_path(directory, self.run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        return _write_private(path, json.dumps(asdict(self)).encode())

    @classmethod
    def read(cls, directory: str | os.PathLike, run_id: str) -> "Credentials":
        """Read the credentials file of ``run_id``.

        Args:
            directory (str | PathLike): The run's shared directory.
            run_id (str): The run's id.

        Returns:
            Credentials: Host, port, run id and secret.

        Raises:
            FileNotFoundError: There is no such file.
            UnsafeFileError: Anyone but this user could have written or read it.
        """
        path = credentials_path(directory, run_id)
        raw = read_private(path)
        try:
            data = json.loads(raw)
            return cls(host=str(data["host"]), port=int(data["port"]), run_id=str(data["run_id"]),
                       secret=str(data["secret"]))
        except (KeyError, TypeError, ValueError) as exc:  # JSON and UTF-8 errors included
            raise ConfigurationError(f"{path} is not an ultrarun credentials file: {exc}") from None


def _write_private(path: Path, data: bytes) -> Path:
    """Write a file only its owner may read (mode 0600 from its creation), atomically."""
    return write_atomic(path, lambda fh: fh.write(data), mode=0o600)


def read_private(path: str | os.PathLike) -> bytes:
    """The content of a file that holds a secret, once it is known to be a regular file (not a
    link, FIFO or device) owned by this user with no permission for anyone else; else
    ``UnsafeFileError``, which says why and what to do. ``FileNotFoundError`` if absent."""
    fd = open_nofollow(path, os.O_RDONLY | os.O_NONBLOCK)  # a planted FIFO must not block us
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        why = None
        if not stat.S_ISREG(info.st_mode):
            why = "it is not a regular file"
        elif info.st_uid != os.getuid():
            why = f"it belongs to user id {info.st_uid}, not to you ({os.getuid()})"
        elif info.st_mode & 0o077:
            why = (f"its mode is {stat.S_IMODE(info.st_mode):04o}: others may read or change it "
                   "(it must be 0600)")
        if why:
            raise UnsafeFileError(f"refusing {path}: {why}, so someone else may know or change its "
                             "secret; remove it (a name server started again writes a new one)")
        return fh.read()


def credentials_path(directory: str | os.PathLike, run_id: str) -> Path:
    return Path(directory) / _CREDENTIALS_NAME.format(run_id=run_id)


def new_secret() -> str:
    return _secrets.token_hex(32)  # hex: no "-" that a command line could take for an option


def user_secret(path: str | os.PathLike | None = None) -> str:
    """The per-user secret, created (mode 0600, directory 0700) on first use."""
    file = Path(os.path.expanduser(str(path or settings.SECRET_FILE)))
    try:
        text = read_private(file).decode().strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    secret = new_secret()
    try:
        fd = open_nofollow(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use theirs
        for _ in range(100):
            text = read_private(file).decode().strip()
            if text:
                return text
            threading.Event().wait(0.01)
        raise ConfigurationError(f"the secret file {file} exists but is empty") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    log.info("created the per-user ultrarun secret in %s", file)
    return secret


def remember_secret(port: int, secret: str) -> None:
    """Note the secret of a name server started in this process (see ``resolve_secret``)."""
    with _known_lock:
        _known_secrets[int(port)] = secret


def forget_secret(port: int) -> None:
    with _known_lock:
        _known_secrets.pop(int(port), None)


def resolve_secret(secret: str | None = None, nameserver_port: int | None = None) -> str:
    """The secret to use: explicit argument, a name server of this process on that port,
    ``ULTRARUN_SECRET``, then the per-user secret.

    Args:
        secret (str | None): The explicit secret.
        nameserver_port (int | None): The port of a name server this process started.

    Returns:
        str: The secret.
    """
    if secret:
        return secret
    if nameserver_port is not None:
        with _known_lock:
            known = _known_secrets.get(int(nameserver_port))
        if known:
            return known
    if settings.SECRET:
        return settings.SECRET
    return user_secret()


def make_certificates(directory: str | os.PathLike, days: int = 3650) -> Path:
    """Write a run's TLS files into ``directory``: a private CA (``ca.pem``, and ``ca.key``,
    which only this command needs) and one certificate it signed (``party.pem``,
    ``party.key``) that every party of the run uses for two-way TLS. Keys are written with
    mode 0600. Copy the directory (without ``ca.key``) to every node, and pass it as ``--tls``
    or ``tls=``. Needs the ``cryptography`` package (``pip install ultrarun[tls]``)."""
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:  # pragma: no cover - the tls extra is missing
        raise ConfigurationError("making certificates needs the cryptography package: "
                                 "pip install 'ultrarun[tls]'") from None
    path = Path(directory)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    later = now + datetime.timedelta(days=days)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("ultrarun run CA"))
          .issuer_name(name("ultrarun run CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    party_key = ec.generate_private_key(ec.SECP256R1())
    party = (x509.CertificateBuilder().subject_name(name("ultrarun party"))
             .issuer_name(ca.subject).public_key(party_key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now)
             .not_valid_after(later)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
             .sign(ca_key, hashes.SHA256()))
    for cert, file in ((ca, "ca.pem"), (party, "party.pem")):
        data = cert.public_bytes(serialization.Encoding.PEM)
        write_atomic(path / file, lambda fh, data=data: fh.write(data))
    for key, file in ((ca_key, "ca.key"), (party_key, "party.key")):
        _write_private(path / file, key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    log.info("wrote a run CA and a party certificate to %s", path)
    return path


__all__ = ["Credentials", "credentials_path", "read_private", "new_secret",
           "user_secret", "resolve_secret", "make_certificates"]
