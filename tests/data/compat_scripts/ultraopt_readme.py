"""ultraopt's README: an HDL for a random forest, fmin with ETPE, then an AutoML CASH HDL with
HyperBand over three threads, the schedule's table and the four plots. (Smaller than the
README's: iris instead of digits, fewer iterations.)"""
import json

import matplotlib
matplotlib.use("Agg")
import numpy as np
import pylab as plt
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from ultraopt import fmin
from ultraopt.hdl import hdl2cs, layering_config, plot_hdl
from ultraopt.multi_fidelity import HyperBandIterGenerator

HDL = {
    "n_estimators": {"_type": "int_quniform", "_value": [10, 50, 10], "_default": 20},
    "criterion": {"_type": "choice", "_value": ["gini", "entropy"], "_default": "gini"},
    "max_features": {"_type": "choice", "_value": ["sqrt", "log2"], "_default": "sqrt"},
    "min_samples_split": {"_type": "int_uniform", "_value": [2, 20], "_default": 2},
    "min_samples_leaf": {"_type": "int_uniform", "_value": [1, 20], "_default": 1},
    "bootstrap": {"_type": "choice", "_value": [True, False], "_default": True},
    "random_state": 42
}
X, y = load_iris(return_X_y=True)
cv = StratifiedKFold(3, shuffle=True, random_state=0)


def evaluate(config: dict) -> float:
    model = RandomForestClassifier(**layering_config(config))
    return 1 - float(cross_val_score(model, X, y, cv=cv).mean())


result = fmin(eval_func=evaluate, config_space=HDL, optimizer="ETPE", n_iterations=8)
print(result)
result.plot_convergence()
first = {"best_loss": result.best_loss, "n_estimators": result.best_config["n_estimators"]}

HDL = {
    'classifier(choice)': {
        "RandomForestClassifier": {
            "n_estimators": {"_type": "int_quniform", "_value": [10, 50, 10], "_default": 20},
            "criterion": {"_type": "choice", "_value": ["gini", "entropy"], "_default": "gini"},
            "bootstrap": {"_type": "choice", "_value": [True, False], "_default": True},
            "random_state": 42
        },
        "KNeighborsClassifier": {
            "n_neighbors": {"_type": "int_loguniform", "_value": [1, 30], "_default": 3},
            "weights": {"_type": "choice", "_value": ["uniform", "distance"], "_default": "uniform"},
            "p": {"_type": "choice", "_value": [1, 2], "_default": 2},
        },
    }
}
graph = plot_hdl(HDL)


def evaluate(config: dict, budget: float) -> float:
    layered_dict = layering_config(config)
    AS_HP = layered_dict['classifier'].copy()
    AS, HP = AS_HP.popitem()
    ML_model = eval(AS)(**HP)
    scores = []
    for i, (train_ix, valid_ix) in enumerate(cv.split(X, y)):
        rng = np.random.RandomState(i)
        size = int(train_ix.size * budget)
        train_ix = rng.choice(train_ix, size, replace=False)
        X_train, y_train = X[train_ix, :], y[train_ix]
        X_valid, y_valid = X[valid_ix, :], y[valid_ix]
        ML_model.fit(X_train, y_train)
        scores.append(ML_model.score(X_valid, y_valid))
    score = np.mean(scores)
    return 1 - score


hb = HyperBandIterGenerator(min_budget=1/4, max_budget=1, eta=2)
table = hb.get_table()
result = fmin(eval_func=evaluate, config_space=HDL, optimizer="ETPE",
              multi_fidelity_iter_generator=hb, n_jobs=3, n_iterations=3)
print(result)
plt.figure()  # a new notebook cell: a new figure
plt.rcParams['figure.figsize'] = (16, 12)
plt.subplot(2, 2, 1)
result.plot_convergence_over_time()
plt.subplot(2, 2, 2)
result.plot_concurrent_over_time(num_points=200)
plt.subplot(2, 2, 3)
result.plot_finished_over_time()
plt.subplot(2, 2, 4)
result.plot_correlation_across_budgets()
print(json.dumps({"first": first, "hp_names": sorted(hdl2cs(HDL).keys()),
                  "table": table.loc["budget"].tolist(), "counts": table.loc["num_config"].tolist(),
                  "num_configs": {str(b): i["num_configs"] for b, i in result.budget2info.items()},
                  "best_choice": next(iter(layering_config(result.best_config)["classifier"])),
                  "graph_edges": str(graph).count("->"),
                  "axes_drawn": sum(bool(ax.get_lines() or ax.get_images() or ax.collections)
                                    for ax in plt.gcf().axes)}))
