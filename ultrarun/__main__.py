"""``python -m ultrarun`` is the ``ultrarun`` command."""
from .cli import main

raise SystemExit(main())
