"""A worker that runs an external command per job: your training program, in any language.

Each job runs ``command`` with ``{name}`` placeholders filled from the configuration, plus
``{budget}``, ``{config_id}`` and ``{working_directory}``, and reads the loss from the last line
of its output that looks like ``loss: 0.123`` (or ``loss=0.123``). A command that fails (exit
code not 0, no loss line, over ``job_timeout`` seconds) makes the job CRASHED with the end of its
output as the message. The default command is train_command.py beside this file (Branin).

    python workers/command_worker.py                         # BOHB on this machine, from any directory
    ultrarun worker workers/command_worker.py:CommandWorker --run-id exp1 --working-dir /shared/exp1 \\
        --arg command='./train --lr {lr} --epochs {budget}'

The master of a cluster run with the default command uses ``branin_space()`` from
``ultrarun.benchmarks`` and ``min_budget=1, max_budget=27``.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from ultrarun import Worker
from ultrarun.benchmarks import branin_space

from run_locally import run_locally

DEFAULT_COMMAND = [sys.executable, str(Path(__file__).resolve().with_name("train_command.py")),
                   "--x1", "{x1}", "--x2", "{x2}", "--budget", "{budget}"]
LOSS_LINE = re.compile(r"^\s*loss\s*[:=]\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)


class CommandWorker(Worker):
    """Runs ``command`` (a list, or a string split like a shell line) for each job."""

    def __init__(self, *args, command=None, job_timeout=None, **kwargs):
        super().__init__(*args, **kwargs)
        command = DEFAULT_COMMAND if command is None else command
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        self.job_timeout = job_timeout

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        values = dict(config, budget=f"{budget:g}", config_id="_".join(map(str, config_id)),
                      working_directory=working_directory)
        argv = [part.format(**values) for part in self.command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=self.job_timeout,
                              cwd=working_directory)
        tail = (done.stdout + done.stderr)[-2000:]
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited with code {done.returncode}:\n{tail}")
        found = LOSS_LINE.findall(done.stdout)
        if not found:
            raise RuntimeError(f"{argv[0]} printed no 'loss: <number>' line:\n{tail}")
        return {"loss": float(found[-1]), "info": {"command": shlex.join(argv)}}


def main(argv=None):
    result = run_locally(CommandWorker, branin_space(), 1, 27, argv, __doc__)
    best = result.get_runs_by_id(result.get_incumbent_id())[-1]
    print(f"best: {best.info['command']} -> loss {best.loss:.4f} "
          f"({len(result.get_all_runs())} commands run)")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
