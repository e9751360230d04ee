"""Analysis of a finished run from its logs: the incumbent, HpBandSter's plots and the
interactive learning-curve plot."""
import argparse
import json

import matplotlib.pyplot as plt

import hpbandster.core.result as hpres
import hpbandster.visualization as hpvis

parser = argparse.ArgumentParser()
parser.add_argument("--log_dir", type=str)
args = parser.parse_args()

result = hpres.logged_results_to_HBS_result(args.log_dir)
all_runs = result.get_all_runs()
id2conf = result.get_id2config_mapping()
inc_id = result.get_incumbent_id()
inc_run = result.get_runs_by_id(inc_id)[-1]

figures = [hpvis.losses_over_time(all_runs), hpvis.concurrent_runs_over_time(all_runs),
           hpvis.finished_runs_over_time(all_runs), hpvis.correlation_across_budgets(result),
           hpvis.performance_histogram_model_vs_random(all_runs, id2conf)]
lcs = result.get_learning_curves()
interactive = hpvis.interactive_HBS_plot(lcs, tool_tip_strings=hpvis.default_tool_tips(result, lcs))
plt.show()

trajectory = result.get_incumbent_trajectory()
print(json.dumps({"runs": len(all_runs), "configs": len(id2conf), "incumbent": list(inc_id),
                  "incumbent_loss": inc_run.loss, "incumbent_config": id2conf[inc_id]["config"],
                  "pairs": all(len(f) == 2 for f in figures), "interactive": len(interactive),
                  "open_figures": len(plt.get_fignums()),
                  "failed": sum(r.loss is None for r in all_runs),
                  "trajectory_end": trajectory["losses"][-1], "curves": len(lcs)}))
