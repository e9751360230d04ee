"""DeepHyper's evaluator API on ultrarun: ``from ultrarun.compat.deephyper.evaluator import
Evaluator`` instead of ``from deephyper.evaluator import Evaluator``.

``Evaluator.create(run_function, method="serial" | "thread" | "process" | ...,
method_kwargs={"num_workers": ...})``, ``submit([{...}, ...])``, ``gather("ALL" | "BATCH",
size=...)``; every gathered job has DeepHyper's ``job.args`` / ``job.parameters``,
``job.output`` (``{"objective": ...}``), ``job.objective`` and ``job.metadata``. The run function
gets DeepHyper's ``RunningJob``: ``job.parameters["x"]`` and ``job["x"]`` both work,
and it may return a number, ``"F_..."`` (a failed evaluation) or ``{"objective": ...,
"metadata": {...}}``. DeepHyper maximises its objective; the evaluator only reports it. See
docs/migrating.md.
"""
