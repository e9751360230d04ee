"""ultraopt's tutorial 04 ("the optimizer in detail"): an optimizer made by hand, initialised
with a space made from an HDL, driven with ask/tell, one by one and in batches, then wrapped in
an FMinResult."""
import json

from ultraopt import FMinResult
from ultraopt.hdl import hdl2cs, layering_config
from ultraopt.optimizer import ETPEOptimizer, RandomOptimizer

HDL = {
    "x": {"_type": "uniform", "_value": [-5, 5]},
    "kind(choice)": {
        "square": {"offset": {"_type": "quniform", "_value": [0, 1, 0.25], "_default": 0.5}},
        "absolute": {},
    },
}
config_space = hdl2cs(HDL)


def evaluate(config):
    layered = layering_config(config)
    kind, params = next(iter(layered["kind"].items()))
    x = layered["x"]
    return (x - 1) ** 2 + params.get("offset", 0.0) if kind == "square" else abs(x - 1) + 0.1


told = {}
for optimizer in (ETPEOptimizer(), RandomOptimizer()):
    optimizer.initialize(config_space, initial_points=[{"x": 1.0, "kind:__choice__": "absolute"}])
    for _ in range(20):
        config, info = optimizer.ask()
        optimizer.tell(config, evaluate(config))
    for config, info in optimizer.ask(n_points=5):
        optimizer.tell(config, evaluate(config))
    result = FMinResult(optimizer)
    told[type(optimizer).__name__] = {"n": len(optimizer.budget2obvs[1]["losses"]),
                                      "best": result.best_loss}
offsets = sorted({c.get("kind:square:offset") for c in
                  optimizer.budget2obvs[1]["configs"]} - {None})
print(json.dumps({"told": told, "offset_grid": all(o in (0, .25, .5, .75, 1) for o in offsets)}))
