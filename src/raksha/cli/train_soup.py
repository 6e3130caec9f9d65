"""`raksha train soup`: one network from the weight average of several fine-tuning runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from raksha.cli.train import _bare, _echo_finalized, _extra_sets, _need_torch, train_app

if TYPE_CHECKING:
    from raksha.ml.evaluation.datasets import FaceDataset


@train_app.command("soup")
def train_soup(
    runs: Annotated[
        list[Path],
        typer.Option(
            "--run",
            help="A finished `raksha train expression` run folder (repeatable); its best.pt "
            "joins the average. All runs must share one architecture and starting weights.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for best.pt, the ONNX and card.")],
    val: Annotated[
        Path | None,
        typer.Option("--val", help="FER+-layout folder the softmax temperature is fitted on."),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="The runs' starting model (registry name or .onnx with card), for --alpha < 1.",
        ),
    ] = None,
    alpha: Annotated[
        float,
        typer.Option(
            "--alpha",
            min=0.0,
            max=1.0,
            help="Weight of the runs' average; 1 - alpha goes to --base (WiSE-FT).",
        ),
    ] = 1.0,
    extra: Annotated[
        list[Path] | None,
        typer.Option(
            "--extra",
            help="Labels-layout set the runs used (repeatable): its tune split joins --val for "
            "the temperature, as in training. Its test split is never read.",
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="Model name for the exported ONNX and card.")] = (
        "raksha-fer-soup"
    ),
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
) -> None:
    """Average the weights of several runs fine-tuned from one model (a "model soup"),
    optionally mixed back towards that model, and export the result like a training run: same
    size and cost per face as each run."""
    _need_torch()
    from raksha.ml.training.finalize import finalize_run
    from raksha.ml.training.soup import make_soup

    # make_soup refuses a missing run or --alpha < 1 without --base before it writes anything
    start = None
    if base is not None and alpha < 1.0:
        from raksha.expression.factory import resolve_expression_model
        from raksha.ml.training.distill import net_from_onnx

        start = net_from_onnx(resolve_expression_model(base, models)[1]).net
    soup = make_soup(runs, out, base=start, base_name=base, alpha=alpha)
    val_data = _calibration_faces(val, extra or [], models)
    card_data = _members_data(runs) or {"note": "the member runs' cards name their data"}
    done = finalize_run(
        out,
        name,
        val_data,
        flip_tta=True,
        calibrate=val_data is not None,
        card_extra={"data": card_data, "soup": soup},
    )
    _echo_finalized(done)


def _calibration_faces(
    val: Path | None, extra: list[Path], models: Path | None
) -> FaceDataset | None:
    """--val plus the tune split of each --extra set: the faces training validated on."""
    from raksha.ml.evaluation.datasets import concat, read_ferplus

    parts = [read_ferplus(val, keep="majority", size=48)] if val is not None else []
    parts += [_bare(tu) for _, tu in _extra_sets(extra, 0.2, models).values() if len(tu)]
    return concat(parts) if parts else None


def _members_data(runs: list[Path]) -> dict[str, Any] | None:
    """The training data the first run's card names (every member was trained on the same)."""
    for card in sorted(runs[0].glob("*.json")):
        try:
            doc = json.loads(card.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
            data: dict[str, Any] = doc["data"]
            return data
    return None
