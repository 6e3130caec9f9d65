"""`raksha train expression` and `raksha eval expression`: our own expression model, trained and
measured by the program itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from raksha.errors import RakshaError

train_app = typer.Typer(
    help="Train models (needs the `train` extra: PyTorch).", no_args_is_help=True
)
eval_app = typer.Typer(help="Measure models on labelled data.", no_args_is_help=True)


class TrainingUnavailable(RakshaError):
    """PyTorch is not installed."""


@train_app.command("expression")
def train_expression(
    data: Annotated[Path, typer.Option("--data", help="FER+-layout training folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, ONNX, card.")],
    val: Annotated[
        Path | None, typer.Option("--val", help="FER+-layout validation folder (model selection).")
    ] = None,
    epochs: Annotated[
        int, typer.Option(min=1, help="Epochs (the cosine schedule spans them).")
    ] = 40,
    batch_size: Annotated[int, typer.Option("--batch-size", min=8)] = 128,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak AdamW learning rate.")] = 3e-3,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[int, typer.Option(min=0, help="torch threads (0 = default).")] = 0,
    bf16: Annotated[bool, typer.Option("--bf16/--fp32", help="bfloat16 autocast on CPU.")] = True,
    time_budget_min: Annotated[
        float | None,
        typer.Option(
            "--time-budget-min",
            min=0.1,
            help="Stop after this many minutes; the LR schedule is compressed to fit.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=16, help="Use only the first N training faces (smoke runs).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last.pt.")] = False,
    name: Annotated[str, typer.Option(help="Model name for the exported ONNX and card.")] = (
        "raksha-fer-resnet"
    ),
) -> None:
    """Train an expression model from scratch on FER+ vote distributions, then export the best
    checkpoint (by validation accuracy) to ONNX with its model card."""
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise TrainingUnavailable(
            "PyTorch is not installed; install the train extra: pip install 'raksha[train]'"
        ) from err
    import numpy as np

    from raksha.evaluation.datasets import read_ferplus
    from raksha.expression.training.export import export_onnx, hardware_description, write_card
    from raksha.expression.training.loop import TrainConfig, load_checkpoint_model, train

    train_data = read_ferplus(data, keep="usable", size=48)
    if limit is not None:
        train_data = train_data.subset(np.arange(min(limit, len(train_data))))
    val_data = read_ferplus(val, keep="majority", size=48) if val is not None else None
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        threads=threads,
        bf16=bf16,
        time_budget_min=time_budget_min,
    )
    summary = train(train_data, val_data, out, cfg, resume=resume)
    net, ck = load_checkpoint_model(out / "best.pt")
    onnx_path = out / f"{name}.onnx"
    diff = export_onnx(net, onnx_path)
    hist = summary.pop("history")
    card = write_card(
        onnx_path,
        name,
        {
            "training": {
                "data": str(data),
                "faces": len(train_data),
                "validation": str(val) if val else None,
                "epochs_run": summary["epochs_run"],
                "best_epoch": ck["epoch"],
                "best_val_accuracy": ck["val_accuracy"],
                "seconds": round(summary["train_seconds"], 1),
                "hardware": hardware_description(),
                "recipe": ck["config"],
                "class_weights": summary["class_weights"],
                "onnx_parity_max_abs_diff": diff,
            },
            "history": hist,
        },
    )
    typer.echo(
        f"best epoch {ck['epoch']}: val accuracy {ck['val_accuracy']:.4f}; "
        f"wrote {onnx_path} and {card} (ONNX vs PyTorch max diff {diff:.1e})"
    )


@eval_app.command("expression")
def eval_expression(
    dataset: Annotated[Path, typer.Option("--dataset", help="Labelled faces folder.")],
    model: Annotated[
        str, typer.Option("--model", help="Registry name or path to an .onnx with its card.")
    ] = "",
    fmt: Annotated[
        Literal["ferplus", "folders"] | None,
        typer.Option("--format", help="Dataset layout (default: guessed)."),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write metrics JSON here.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="Folder for confusion/reliability PNGs.")
    ] = None,
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N faces.")] = None,
) -> None:
    """Accuracy, per-class metrics, calibration, small-face robustness and the distress
    operating point of an expression model on labelled faces."""
    from rich.console import Console

    from raksha.evaluation.report import print_report, write_plots
    from raksha.evaluation.runner import evaluate_model

    result = evaluate_model(model or None, dataset, fmt=fmt, models_dir=models, limit=limit)
    print_report(result, Console())
    if report is not None:
        write_plots(result, report)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
