"""ultraopt's tutorial 08 (the asynchronous communication strategy, by hand): a name server on
a free port, workers in threads initialised with the objective, and a master with ETPE and
HyperBand, checkpointing the optimizer; a worker's idle timeout counts from its last job."""
import json

from joblib import load

from ultraopt import FMinResult
from ultraopt.async_comm.master import Master
from ultraopt.async_comm.nameserver import NameServer
from ultraopt.async_comm.worker import Worker
from ultraopt.multi_fidelity import HyperBandIterGenerator
from ultraopt.optimizer import ETPEOptimizer
from ultraopt.tests.mock import config_space, evaluate
from ultraopt.utils.net import get_a_free_port

run_id = "tutorial_08"
ns_host = "127.0.0.1"
ns_port = get_a_free_port(9090, ns_host)
NS = NameServer(run_id=run_id, host=ns_host, port=ns_port)
NS.start()
workers = []
for i in range(2):
    worker = Worker(run_id=run_id, nameserver=ns_host, nameserver_port=ns_port, worker_id=i,
                    timeout=0.5)
    worker.initialize(evaluate)
    worker.run(background=True, concurrent_type="thread")
    workers.append(worker)
iter_generator = HyperBandIterGenerator(min_budget=25, max_budget=100, eta=2)
optimizer = ETPEOptimizer()
optimizer.initialize(config_space, iter_generator.get_budgets())
master = Master(run_id, optimizer, iter_generator, checkpoint_file="async.pkl",
                checkpoint_freq=5, nameserver=ns_host, nameserver_port=ns_port, host=ns_host)
result = master.run(n_iterations=3)
master.shutdown(shutdown_workers=True)
NS.shutdown()
saved = FMinResult(load("async.pkl"))
print(json.dumps({"runs": len(result.get_all_runs()), "port_free": ns_port >= 9090,
                  "saved": {str(b): i["num_configs"] for b, i in saved.budget2info.items()}}))
