"""``hpbandster.visualization``: ultrarun's plots, which take HpBandSter's arguments and return
``(fig, ax)`` as HpBandSter's do (see :mod:`ultrarun.visualization`)."""
from ...visualization import (concurrent_runs_over_time, correlation_across_budgets,
                              default_tool_tips, finished_runs_over_time, interactive_HBS_plot,
                              losses_over_time, performance_histogram_model_vs_random)

__all__ = ["concurrent_runs_over_time", "correlation_across_budgets", "default_tool_tips",
           "finished_runs_over_time", "interactive_HBS_plot", "losses_over_time",
           "performance_histogram_model_vs_random"]
