"""``ultraopt.tests``: the toy problem ultraopt's tutorials import (:mod:`.mock`)."""
