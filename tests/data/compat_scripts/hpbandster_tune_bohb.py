"""How Ray Tune's ``TuneBOHB`` searcher drives HpBandSter's BOHB config generator: it builds
``BOHB(space)`` from ``hpbandster.optimizers.config_generators.bohb``, asks ``get_config(None)``
(Tune decides budgets, not the generator), and reports each result through a small job
wrapper with ``result``, ``kwargs`` and ``exception``. With ``--ray`` the real ``TuneBOHB``
(needs ``ray[tune]``) makes the same calls."""
import json
import sys

import ConfigSpace as CS

from hpbandster.optimizers.config_generators.bohb import BOHB


class BOHBJobWrapper:  # Tune's _BOHBJobWrapper
    def __init__(self, loss, budget, config):
        self.result = {"loss": loss}
        self.kwargs = {"budget": budget, "config": config.copy()}
        self.exception = None


class TuneStyleSearcher:
    def __init__(self, space):
        space.seed(1)  # TuneBOHB seeds the space it is given
        self.bohber = BOHB(space)
        self.params = {}

    def suggest(self, trial_id):
        config, _ = self.bohber.get_config(None)  # "not used in hpbandster implementation"
        self.params[trial_id] = config
        return config

    def on_trial_result(self, trial_id, result):
        budget = result["hyperband_info"]["budget"]
        self.bohber.new_result(BOHBJobWrapper(result["loss"], budget, self.params[trial_id]))

    def on_trial_complete(self, trial_id, result):
        del self.params[trial_id]


space = CS.ConfigurationSpace()
space.add(CS.UniformFloatHyperparameter("x", lower=-2, upper=2))
if "--ray" in sys.argv:
    from ray.tune.search.bohb import TuneBOHB

    searcher = TuneBOHB(space=space, metric="loss", mode="min", seed=1)
else:
    searcher = TuneStyleSearcher(space)
suggested = []
for budget in (1, 3, 9):
    for i in range(12):
        trial = f"{budget}_{i}"
        config = searcher.suggest(trial)
        loss = (config["x"] - 1) ** 2
        searcher.on_trial_result(trial, {"loss": loss, "hyperband_info": {"budget": budget}})
        searcher.on_trial_complete(trial, {"loss": loss})
        suggested.append(config["x"])
print(json.dumps({"suggested": len(suggested), "distinct": len(set(suggested))}))
