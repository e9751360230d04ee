"""``hpbandster.examples``: the worker its example scripts import (:mod:`.commons`)."""
