"""`raksha config show | check`: the settings in force, and validation without running."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from raksha.cli.options import DEFAULT_CONFIG, ConfigOpt, OptionalConfigOpt

app = typer.Typer(help="Show or check settings.", no_args_is_help=True, rich_markup_mode=None)


def redact_tree(value: Any) -> Any:
    """Every string in a nested structure passed through `redact` (a URL or secret-looking
    `key=value` anywhere in the settings is masked, not only the fields known to hold URLs)."""
    from raksha.redact import redact

    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    return redact(value) if isinstance(value, str) else value


def _effective(config: Path | None, analysis_only: bool) -> dict[str, Any]:
    from raksha.config import AnalysisConfig, load_analysis_config, load_run_config
    from raksha.redact import mask_url

    if config is None or analysis_only:
        cfg: AnalysisConfig = load_analysis_config(config)
        data = cfg.model_dump(mode="json")
    else:
        run = load_run_config(config)
        data = run.model_dump(mode="json")
        # Never print credentials: cameras, storage and the webhook are shown with passwords masked.
        data["cameras"] = [
            {**c, "url": cam.display_url}
            for c, cam in zip(data["cameras"], run.cameras, strict=True)
        ]
        data["storage"]["url"] = run.storage.display_url
        if run.alerts.webhook is not None:
            data["alerts"]["webhook"]["url"] = mask_url(run.alerts.webhook.url)
    data.pop("models_dir", None)
    shown: dict[str, Any] = redact_tree(data)
    return shown


@app.command("show")
def show(
    config: OptionalConfigOpt = None,
    analysis: Annotated[
        bool, typer.Option("--analysis", help="Only the analysis settings (no city).")
    ] = False,
) -> None:
    """Print the effective settings (defaults filled in, secrets masked) as YAML."""
    import yaml

    typer.echo(yaml.safe_dump(_effective(config, analysis), sort_keys=False).rstrip())


@app.command("check")
def check(
    config: ConfigOpt = DEFAULT_CONFIG,
    secrets: Annotated[
        bool,
        typer.Option(
            "--secrets/--no-secrets",
            help="Also check that the secrets file reads and that every ${NAME} the cameras "
            "and the store need is set (in the environment or the secrets file).",
        ),
    ] = True,
    models: Annotated[
        Path | None, typer.Option("--models", envvar="RAKSHA_MODELS", help="Model directory.")
    ] = None,
) -> None:
    """Validate a deployment config without running it: fields, references, polygons, and
    by default everything `raksha run` would refuse on this machine (secrets not set, the
    store's URL, alert secrets, the evidence key, missing models), through the same checks
    `raksha run` makes first. Secret values are never printed."""
    from raksha.app import preflight
    from raksha.config import load_run_config
    from raksha.errors import ConfigError
    from raksha.site.load import unresolved_secrets

    cfg = load_run_config(config)
    if secrets:
        problems = preflight(cfg, models_dir=models)
    else:
        problems = [
            p for p in preflight(cfg, models_dir=models) if p not in unresolved_secrets(cfg)
        ]
    if problems:
        raise ConfigError(f"{config}: " + "; ".join(problems))
    typer.echo(
        f"{config}: ok ({len(cfg.stations)} stations, {len(cfg.patrol_units)} patrol units, "
        f"{len(cfg.hotspots)} hotspots, {len(cfg.cameras)} cameras)"
    )
