"""mkdocs hook (mkdocs.yml ``hooks:``): the site's footer shows ultrarun's version, read from
``ultrarun.__version__`` so the site cannot show another one."""
from __future__ import annotations

from typing import Any

import ultrarun


def on_config(config: Any) -> Any:
    config["copyright"] = (f"ultrarun {ultrarun.__version__} · BSD-3-Clause · "
                           f"<a href=\"{config['repo_url']}\">{config['repo_name']}</a>")
    return config
