"""Files in a shared directory are hostile until checked (docs/security.md, "Shared directories").

Another user of a shared working directory may plant a credentials file (to hand the run a secret
they know), a link where ultrarun will write (to make it write the secret, or truncate a file,
elsewhere), a FIFO (to hang a reader), or a journal of another run. Each test plants one with
real processes or a real name server and checks that nothing is adopted, written through or
replayed, and that the error says why.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import WORKERS
from ultrarun.errors import ConfigurationError, UnsafeFileError
from ultrarun.nameserver import NameServer
from ultrarun.security import Credentials, credentials_path, new_secret, user_secret

NOBODY = 65534  # a user id that is not ours
RUN = "shared"


def _plant(directory: Path, how: str, secret: str) -> Path:
    """A credentials file of run ``RUN`` with ``secret``, planted in one way."""
    path = credentials_path(directory, RUN)
    body = json.dumps({"host": "127.0.0.1", "port": 1, "run_id": RUN, "secret": secret})
    if how == "fifo":
        os.mkfifo(path, 0o600)
        return path
    if how == "symlink":
        target = directory / "elsewhere.json"
        target.write_text(body)
        target.chmod(0o600)
        path.symlink_to(target)
        return path
    path.write_text(body)
    path.chmod(0o644 if how == "group-readable" else 0o600)
    if how == "other-owner":
        os.chown(path, NOBODY, NOBODY)
    return path


PLANTED = ["other-owner", "group-readable", "symlink", "fifo"]


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ultrarun", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("how", PLANTED)
def test_the_name_server_never_adopts_a_planted_credentials_file(tmp_path, how):
    """`ultrarun nameserver --working-dir` used to adopt whatever credentials file it found (and
    with it a secret the planter knows), and to hang on a FIFO. Now it refuses, says why, and
    exits at once."""
    if how == "other-owner" and os.geteuid() != 0:
        pytest.skip("planting another user's file needs root")
    planted = new_secret()
    _plant(tmp_path, how, planted)
    proc = _cli("nameserver", "--run-id", RUN, "--working-dir", str(tmp_path))
    assert proc.returncode == 2, proc.stderr
    why = {"other-owner": f"belongs to user id {NOBODY}", "group-readable": "must be 0600",
           "symlink": "symbolic link", "fifo": "not a regular file"}[how]
    assert why in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("how", PLANTED)
def test_a_worker_refuses_a_planted_credentials_file(tmp_path, how):
    """A worker told `--working-dir` reads the credentials file: one it cannot trust sends it to
    a name server (and a secret) of the planter's choosing. It exits with the reason instead."""
    if how == "other-owner" and os.geteuid() != 0:
        pytest.skip("planting another user's file needs root")
    _plant(tmp_path, how, new_secret())
    proc = _cli("worker", f"{WORKERS}:TestWorker", "--run-id", RUN, "--working-dir",
                str(tmp_path), "--wait-credentials", "1")
    assert proc.returncode == 2, proc.stderr
    assert "refusing" in proc.stderr and "Traceback" not in proc.stderr


def test_a_link_at_the_temporary_name_cannot_redirect_the_secret(tmp_path):
    """The credentials file used to be written to `.<name>.<pid>.tmp`, opened without O_EXCL or
    O_NOFOLLOW: a link planted at that name made the name server write the secret into a file
    of the planter's choosing. Now the temporary name is unpredictable and created exclusively,
    and the rename replaces a link at the final name instead of following it."""
    victim = tmp_path / "victim.txt"
    victim.write_text("the planter reads this file\n")
    victim.chmod(0o644)
    name = credentials_path(tmp_path, RUN).name
    for pid in {os.getpid(), os.getppid()}:
        (tmp_path / f".{name}.{pid}.tmp").symlink_to(victim)
    credentials_path(tmp_path, RUN).symlink_to(tmp_path / "also-victim.txt")
    with NameServer(RUN, working_directory=tmp_path, fresh=True) as ns:
        path = ns.credentials_file
        assert victim.read_text() == "the planter reads this file\n"
        assert not (tmp_path / "also-victim.txt").exists()
        assert not path.is_symlink() and (path.stat().st_mode & 0o777) == 0o600
        assert Credentials.read(tmp_path, RUN).secret == ns.secret
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")
                 and not p.is_symlink()]
    assert leftovers == []


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_the_per_user_secret_file_must_be_private(tmp_path, mode):
    """The per-user fallback secret is refused when others could read it."""
    file = tmp_path / "secret"
    file.write_text(new_secret() + "\n")
    file.chmod(mode)
    with pytest.raises(UnsafeFileError, match="must be 0600"):
        user_secret(file)
    file.chmod(0o600)
    assert user_secret(file) == file.read_text().strip()


# ------------------------------------------------------------------ the journal and the logs
@pytest.mark.parametrize("name", ["results.json", "configs.json"])
def test_the_result_logs_never_write_through_a_link(tmp_path, name):
    """A link planted at a log's name used to make the master truncate and write the file it
    points to. Now the run stops before any job with an error that names the link."""
    from ultrarun.results import json_result_logger

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / name).symlink_to(victim)
    logger = json_result_logger(str(out), overwrite=True)
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        logger.open("overwrite")
    assert victim.read_text() == "keep me\n"


def test_the_journal_never_writes_through_a_link(tmp_path):
    from ultrarun._files import JsonLines

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    journal = tmp_path / "run.journal.jsonl"
    journal.symlink_to(victim)
    for append in (False, True):
        with pytest.raises(UnsafeFileError, match="symbolic link"):
            JsonLines(journal).open(append=append)
    assert victim.read_text() == "keep me\n"


def test_a_journal_without_its_header_is_not_replayed(tmp_path):
    """A journal whose header was cut (or a file someone else wrote) used to be replayed into
    the resumed run as if it were its own. Now the resume is refused with the reason."""
    from test_master_unit import Clock, SimulatedExecutor, master_on
    from ultrarun.iterations import HyperBandIterGenerator

    first = master_on(SimulatedExecutor(Clock()), HyperBandIterGenerator(1, 9, 3), tmp_path)
    first.run(n_iterations=1)
    first.journal.close()
    lines = first.journal.path.read_text().splitlines(keepends=True)
    assert json.loads(lines[0])["t"] == "header"
    first.journal.path.write_text("".join(lines[1:]))
    executor = SimulatedExecutor(Clock())
    resumed = master_on(executor, HyperBandIterGenerator(1, 9, 3), tmp_path, existing="resume")
    with pytest.raises(ConfigurationError, match="no header"):
        resumed.run(n_iterations=1)
    assert executor.submitted == []
