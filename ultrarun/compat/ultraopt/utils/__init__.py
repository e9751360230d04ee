"""``ultraopt.utils``: only ``progress`` is provided."""
