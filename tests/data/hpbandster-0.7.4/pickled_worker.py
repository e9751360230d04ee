"""A worker written for HpBandSter, made picklable the usual way (HpBandSter's own Worker holds a
lock and a logger, which cannot be pickled): ``make_data.py`` pickles one with HpBandSter 0.7.4,
``tests/test_compat_hpbandster.py`` loads it with ultrarun."""
from hpbandster.core.worker import Worker


class PicklableWorker(Worker):
    offset = 0.0

    def compute(self, config, budget, **kwargs):
        if config["x"] > 0.9:
            raise ValueError(f"x = {config['x']} is out of the model's range")
        loss = (config["x"] - 0.3) ** 2 + (0.1 if config["kind"] == "b" else 0.0) + 1.0 / budget
        return {"loss": float(loss) + self.offset, "info": {"budget": budget}}

    def __getstate__(self):
        state = dict(self.__dict__)
        for unpicklable in ("thread_cond", "timer", "thread", "logger", "pyro_daemon"):
            state.pop(unpicklable, None)
        return state
