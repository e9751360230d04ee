"""DeepHyper's evaluator API on ultrarun: ``from ultrarun.compat.deephyper.evaluator import
Evaluator`` instead of ``from deephyper.evaluator import Evaluator``. Gathered jobs have
DeepHyper's attribute names and the run function gets a ``RunningJob``; see docs/migrating.md.
"""
