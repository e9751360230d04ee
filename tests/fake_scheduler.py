"""Local stand-ins for sbatch, srun, qsub, bsub and ssh, so the launch scripts in scripts/ run
here as they would on a cluster: ``python fake_scheduler.py sbatch ARGS...`` behaves as
``sbatch ARGS...`` (the test puts one small wrapper per command on PATH).

Each submitted job (every task of an array) runs in the background on this machine with the
scheduler's environment variables; its process id goes to $FAKE_SCHEDULER_DIR/pids so the test
can wait for it and clean up. Output goes where the script asked (-o/--output), else to
$FAKE_SCHEDULER_DIR/job-ID.log.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ["FAKE_SCHEDULER_DIR"])


def new_job_id() -> int:
    counter = STATE / "next_id"
    value = int(counter.read_text()) if counter.exists() else 1000
    counter.write_text(str(value + 1))
    return value


def launch(argv, env, output) -> None:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "a") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    with open(STATE / "pids", "a") as fh:
        fh.write(f"{proc.pid}\n")


def array_range(text):
    first, _, last = re.match(r"(\d+)(-(\d+))?", text).group(1, 2, 3)
    return range(int(first), int(last or first) + 1)


def sbatch(args):
    opts, rest = {}, list(args)
    while rest and rest[0].startswith("-"):
        key, _, value = rest.pop(0).partition("=")
        opts[key] = value
    script, script_args = rest[0], rest[1:]
    job = new_job_id()
    tasks = array_range(opts["--array"]) if "--array" in opts else [None]
    for task in tasks:
        env = dict(os.environ, SLURM_JOB_ID=str(job), SLURM_NTASKS=os.environ.get("FAKE_NTASKS", "1"))
        output = opts.get("--output", str(STATE / f"job-{job}.log")).replace("%j", str(job))
        if task is not None:
            env.update(SLURM_ARRAY_JOB_ID=str(job), SLURM_ARRAY_TASK_ID=str(task))
            output = output.replace("%A", str(job)).replace("%a", str(task))
        launch(["bash", script, *script_args], env, output)
    print(job if "--parsable" in opts else f"Submitted batch job {job}")


def srun(args):
    command = list(args)
    while command[0].startswith("-"):  # srun's own options come before the command
        command.pop(0)
    procs = [subprocess.Popen(command, env=dict(os.environ, SLURM_PROCID=str(i)))
             for i in range(int(os.environ.get("SLURM_NTASKS", "1")))]
    sys.exit(max(p.wait() for p in procs))


def qsub(args):
    opts, rest = {}, list(args)
    while len(rest) > 1:
        key = rest.pop(0)
        opts[key] = rest.pop(0)
    job = new_job_id()
    variables = dict(kv.split("=", 1) for kv in opts.get("-v", "").split(",") if kv)
    array = opts.get("-J") or opts.get("-t")
    for task in array_range(array) if array else [None]:
        env = dict(os.environ, PBS_JOBID=f"{job}.fake", PBS_O_WORKDIR=os.getcwd(), **variables)
        output = opts.get("-o", str(STATE / f"job-{job}.log"))
        if output.endswith("/"):
            output += f"{job}-{task}.log"
        if task is not None:
            env.update(PBS_ARRAY_INDEX=str(task), PBS_ARRAYID=str(task))
        launch(["bash", rest[0]], env, output)
    print(f"{job}[].fake" if array else f"{job}.fake")


def bsub(args):
    opts, rest = {}, list(args)
    while rest:
        key = rest.pop(0)
        opts[key] = rest.pop(0)
    script = STATE / f"bsub-{new_job_id()}.sh"
    script.write_text(sys.stdin.read())
    job = new_job_id()
    match = re.search(r"\[(.*)\]$", opts.get("-J", ""))
    for task in array_range(match.group(1)) if match else [0]:
        env = dict(os.environ, LSB_JOBID=str(job), LSB_JOBINDEX=str(task))
        output = opts.get("-o", str(STATE / f"job-{job}.log"))
        launch(["bash", str(script)], env, output.replace("%J", str(job)).replace("%I", str(task)))
    print(f"Job <{job}> is submitted to default queue <normal>.")


def ssh(args):
    rest = list(args)
    while rest and rest[0].startswith("-"):  # options, and the values of -o, -p, -i, -l
        option = rest.pop(0)
        if option in ("-o", "-p", "-i", "-l"):
            rest.pop(0)
    rest.pop(0)  # the host: run the command here
    sys.exit(subprocess.call(["sh", "-c", " ".join(rest)], stdin=subprocess.DEVNULL))


if __name__ == "__main__":
    {"sbatch": sbatch, "srun": srun, "qsub": qsub, "bsub": bsub,
     "ssh": ssh}[sys.argv[1]](sys.argv[2:])
