"""``hpbandster.core``: name server, worker, dispatcher, master, iterations, results."""
