"""Options every command spells the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: The deployment file: `--config`, else $RAKSHA_CONFIG, else ./raksha.yaml.
CONFIG_ENV = "RAKSHA_CONFIG"
DEFAULT_CONFIG = Path("raksha.yaml")

ConfigOpt = Annotated[
    Path,
    typer.Option(
        "--config",
        envvar=CONFIG_ENV,
        help="Deployment YAML (default ./raksha.yaml, or $RAKSHA_CONFIG).",
    ),
]
#: Where a config is optional (analysis settings; built-in defaults without one).
OptionalConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar=CONFIG_ENV,
        help="Deployment or analysis YAML; without it, the built-in defaults.",
    ),
]
