"""`raksha train expression` and `raksha eval expression`: our own expression model, trained and
measured by the program itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from raksha.errors import RakshaError

if TYPE_CHECKING:
    from raksha.ml.evaluation.datasets import FaceDataset
    from raksha.ml.training.finalize import Finalized

train_app = typer.Typer(
    help="Train models (needs the `train` extra: PyTorch).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
eval_app = typer.Typer(
    help="Measure models on labelled data.", no_args_is_help=True, rich_markup_mode=None
)


class TrainingUnavailable(RakshaError):
    """PyTorch is not installed."""


_BatchSize = Annotated[int, typer.Option("--batch-size", min=8)]
_Threads = Annotated[int, typer.Option(min=0, help="torch threads (0 = default).")]
_Bf16 = Annotated[
    bool | None,
    typer.Option("--bf16/--fp32", help="bfloat16 autocast (default: only where the CPU has bf16)."),
]


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise TrainingUnavailable(
            "PyTorch is not installed; install the train extra: pip install 'raksha[train]'"
        ) from err


def _training_data(
    data: Path, val: Path | None, limit: int | None, out: Path, resume: bool
) -> tuple[FaceDataset, FaceDataset | None]:
    """The training faces (the first `limit` of them) and the validation faces; refuses
    --resume without a checkpoint before anything is read."""
    import numpy as np

    from raksha.ml.evaluation.datasets import read_ferplus

    if resume and not (out / "last.pt").is_file():
        raise RakshaError(f"--resume: no checkpoint to resume from at {out / 'last.pt'}")
    train_data = read_ferplus(data, keep="usable", size=48)
    if limit is not None:
        train_data = train_data.subset(np.arange(min(limit, len(train_data))))
    val_data = read_ferplus(val, keep="majority", size=48) if val is not None else None
    return train_data, val_data


def _int_list(text: str, option: str, smallest: int) -> tuple[int, ...]:
    """'16,32,64' -> (16, 32, 64), with an error naming the option when it is not that."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) < smallest or any(v < 1 for v in values):
        raise RakshaError(
            f"{option} must be {smallest} or more positive whole numbers separated by commas, "
            f"got {text!r}"
        )
    return values


def _data_card(data: Path, val: Path | None, n_train: int, targets: str) -> dict[str, Any]:
    return {
        "train": f"{data.name}: FER+ (FER2013 Training split), {n_train} faces whose top vote "
        f"is an emotion, {targets}",
        "validation": f"{val.name}: FER2013 PublicTest with FER+ majority labels" if val else None,
    }


def _echo_finalized(done: Finalized) -> None:
    acc = "" if done.val_accuracy is None else f"val accuracy {done.val_accuracy:.4f}; "
    typer.echo(
        f"{acc}temperature {done.temperature:.2f}; wrote {done.onnx} and {done.card} "
        f"(ONNX vs PyTorch max diff {done.parity_max_abs_diff:.1e})"
    )


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
    batch_size: _BatchSize = 128,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak AdamW learning rate.")] = 3e-3,
    seed: Annotated[int, typer.Option()] = 0,
    threads: _Threads = 0,
    bf16: _Bf16 = None,
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
    export_only: Annotated[
        bool, typer.Option("--export-only", help="Skip training; export OUT/best.pt.")
    ] = False,
    flip_tta: Annotated[
        bool,
        typer.Option("--flip-tta/--no-flip-tta", help="Average with the mirrored face in ONNX."),
    ] = True,
    calibrate: Annotated[
        bool,
        typer.Option("--calibrate/--no-calibrate", help="Fit the softmax temperature on --val."),
    ] = True,
    ship_to: Annotated[
        Path | None, typer.Option("--ship-to", help="Write the ONNX + card here (default OUT).")
    ] = None,
    name: Annotated[str, typer.Option(help="Model name for the exported ONNX and card.")] = (
        "raksha-fer-resnet"
    ),
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Start from this model's weights (registry name or .onnx with card; "
            "BatchNorm folded and fixed) instead of random weights.",
        ),
    ] = None,
    extra: Annotated[
        list[Path] | None,
        typer.Option(
            "--extra",
            help="Labels-layout face set (repeatable): its train split (by subject) is added "
            "to training and its tune split to validation; faces are found and cropped by the "
            "runtime's detector and crop policy. Its test split is never read.",
        ),
    ] = None,
    extra_repeat: Annotated[
        int, typer.Option("--extra-repeat", min=1, help="Each --extra face appears N times.")
    ] = 4,
    observer_share: Annotated[
        float,
        typer.Option(
            "--observer-share",
            min=0.0,
            max=1.0,
            help="Share of observers' votes in an --extra set's targets (where it has them).",
        ),
    ] = 0.2,
    logit_adjust: Annotated[
        float,
        typer.Option(
            "--logit-adjust",
            min=0.0,
            help="Logit-adjusted loss (tau; 0 = off, then rare classes are weighted instead).",
        ),
    ] = 0.0,
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
) -> None:
    """Train an expression model on FER+ vote distributions (and, with --extra, the train
    splits of other labelled sets), then export the best checkpoint (by validation accuracy)
    to ONNX with its model card."""
    _need_torch()
    from raksha.ml.training.finalize import finalize_run
    from raksha.ml.training.loop import TrainConfig, cpu_has_bf16, train

    train_data, val_data = _training_data(data, val, limit, out, resume)
    n_ferplus = len(train_data)
    extras = _extra_sets(extra or [], observer_share, models)
    if extras:
        train_data, val_data = _with_extras(train_data, val_data, extras, extra_repeat)
    start = None
    if init is not None:
        from raksha.expression.factory import resolve_expression_model
        from raksha.ml.training.distill import net_from_onnx

        start = net_from_onnx(resolve_expression_model(init, models)[1])
    if not export_only:
        cfg = TrainConfig(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            threads=threads,
            bf16=cpu_has_bf16() if bf16 is None else bf16,
            time_budget_min=time_budget_min,
            logit_adjust=logit_adjust,
            # the adjusted loss already balances the classes: no class weights on top of it
            class_weight_power=0.0 if logit_adjust > 0 else 0.4,
            widths=start.widths if start is not None else (32, 64, 128, 256),
            blocks=start.blocks if start is not None else (1, 1, 1),
            freeze_bn=start is not None,
            warmup_epochs=min(0.3, epochs / 4) if start is not None else 1.0,
        )
        train(
            train_data,
            val_data,
            out,
            cfg,
            resume=resume,
            init=start.net if start is not None else None,
        )
    elif not (out / "best.pt").is_file():
        raise RakshaError(f"--export-only: no checkpoint at {out / 'best.pt'}")
    card_data = _data_card(data, val, n_ferplus, "soft targets from the crowd votes")
    if extras:
        card_data["validation"] = (
            f"{card_data['validation']}, plus the tune split of each --extra set"
            if card_data["validation"]
            else "the tune split of each --extra set"
        )
        card_data["extra"] = {
            n: {
                "train_faces": len(tr),
                "tune_faces": len(tu),
                "no_face_found": len(tr.no_face),
                "split": "by subject (raksha.ml.evaluation.splits); the test split is never read",
                "repeat": extra_repeat,
                "observer_share": observer_share,
            }
            for n, (tr, tu) in extras.items()
        }
    if init is not None:
        card_data["init"] = init
    done = finalize_run(
        out,
        name,
        val_data,
        flip_tta=flip_tta,
        calibrate=calibrate,
        out_dir=ship_to,
        card_extra={"data": card_data},
    )
    _echo_finalized(done)


def _extra_sets(
    folders: list[Path], observer_share: float, models: Path | None
) -> dict[str, tuple[FaceDataset, FaceDataset]]:
    """The train and tune splits of each --extra set, faces cropped as at run time."""
    if not folders:
        return {}
    from raksha.expression.spec import CropSpec
    from raksha.ml.evaluation.datasets import observer_targets, read_dataset
    from raksha.ml.evaluation.detect_crop import build_detect_cropper
    from raksha.ml.evaluation.runner import split_filter

    cropper = build_detect_cropper(CropSpec(), 48, models)
    out: dict[str, tuple[FaceDataset, FaceDataset]] = {}
    for folder in folders:
        parts = []
        for split in ("train", "tune"):
            # the split is chosen from labels.csv / metadata.csv before any face is searched
            # for; the test split's images are never read
            rows = split_filter(folder.name, split)
            data = read_dataset(folder, "labels", cropper=cropper, rows=rows)
            parts.append(observer_targets(data, observer_share))
        train, tune = parts
        out[folder.name] = (train, tune)
        typer.echo(
            f"{folder.name}: {len(train)} train and {len(tune)} tune faces (split by "
            f"subject); no face found in {len(train.no_face) + len(tune.no_face)}"
        )
    return out


def _with_extras(
    train_data: FaceDataset,
    val_data: FaceDataset | None,
    extras: dict[str, tuple[FaceDataset, FaceDataset]],
    repeat: int,
) -> tuple[FaceDataset, FaceDataset | None]:
    from raksha.ml.evaluation.datasets import concat

    bare = [_bare(train_data)] + [_bare(tr) for tr, _ in extras.values() for _ in range(repeat)]
    tunes = [_bare(tu) for _, tu in extras.values() if len(tu)]
    val = concat(([_bare(val_data)] if val_data is not None else []) + tunes) if tunes else None
    return concat(bare), val if val is not None else val_data


def _bare(data: FaceDataset) -> FaceDataset:
    """The faces without per-image columns (training needs none)."""
    from raksha.ml.evaluation.datasets import FaceDataset as _FaceDataset

    return _FaceDataset(data.names, data.images, data.labels, data.targets)


@train_app.command("distill")
def train_distill(
    data: Annotated[Path, typer.Option("--data", help="FER+-layout training folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, ONNX, card.")],
    val: Annotated[
        Path | None, typer.Option("--val", help="FER+-layout validation folder (model selection).")
    ] = None,
    teacher: Annotated[
        str, typer.Option("--teacher", help="Registry name or .onnx (with card) of the teacher.")
    ] = "raksha-fer-resnet",
    teacher_weight: Annotated[
        float,
        typer.Option(
            "--teacher-weight", min=0.0, max=1.0, help="Share of the teacher in the targets."
        ),
    ] = 0.7,
    epochs: Annotated[int, typer.Option(min=1)] = 6,
    batch_size: _BatchSize = 128,
    lr: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Peak AdamW learning rate (default 3e-4 fine-tuning the teacher's weights, "
            "3e-3 for a student of its own size).",
        ),
    ] = None,
    widths: Annotated[
        str | None,
        typer.Option(
            "--widths",
            help="Student channel widths, stem first (e.g. 16,32,64,128); a student whose "
            "widths or blocks differ from the teacher's starts from random weights.",
        ),
    ] = None,
    blocks: Annotated[
        str | None,
        typer.Option("--blocks", help="Student residual blocks per stage (e.g. 1,1,1)."),
    ] = None,
    seed: Annotated[int, typer.Option()] = 0,
    threads: _Threads = 0,
    bf16: _Bf16 = None,
    time_budget_min: Annotated[
        float | None, typer.Option("--time-budget-min", min=0.1, help="Stop after N minutes.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=16, help="Use only the first N training faces (smoke runs).")
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option("--max-steps", min=1, help="Stop after N steps (smoke runs).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last.pt.")] = False,
    ship_to: Annotated[
        Path | None, typer.Option("--ship-to", help="Write the ONNX + card here (default OUT).")
    ] = None,
    name: Annotated[str, typer.Option(help="Name of the one-pass model.")] = (
        "raksha-fer-resnet-onepass"
    ),
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
) -> None:
    """Teach a one-pass student the mirror-averaged answer of an expression model, then export
    it without mirror averaging. By default the student is a copy of the teacher, fine-tuned
    (half the cost per face); with --widths/--blocks it is a smaller network trained from
    scratch on the teacher's answers."""
    _need_torch()
    student_widths = _int_list(widths, "--widths", 2) if widths is not None else None
    student_blocks = _int_list(blocks, "--blocks", 1) if blocks is not None else None
    from raksha.expression.factory import resolve_expression_model
    from raksha.ml.training.distill import net_from_onnx, teacher_targets
    from raksha.ml.training.export import sha256_of
    from raksha.ml.training.finalize import finalize_run
    from raksha.ml.training.loop import TrainConfig, cpu_has_bf16, train

    spec, source = resolve_expression_model(teacher, models)
    rebuilt = net_from_onnx(source)
    typer.echo(
        f"teacher {spec.name}: widths {list(rebuilt.widths)}, blocks {list(rebuilt.blocks)}, "
        f"temperature {rebuilt.temperature:.3f}, mirror averaging {rebuilt.flip_tta}; "
        f"rebuilt network matches the file within {rebuilt.max_abs_diff:.1e}"
    )
    s_widths = student_widths or rebuilt.widths
    s_blocks = student_blocks or (
        rebuilt.blocks if student_widths is None else (1,) * (len(s_widths) - 1)
    )
    if len(s_widths) != len(s_blocks) + 1:
        raise RakshaError(
            f"--widths needs one entry more than --blocks (the stem): got {len(s_widths)} "
            f"widths and {len(s_blocks)} blocks"
        )
    fine_tune = (s_widths, s_blocks) == (rebuilt.widths, rebuilt.blocks)
    if not fine_tune:
        typer.echo(
            f"student: widths {list(s_widths)}, blocks {list(s_blocks)}, from random weights"
        )
    train_data, val_data = _training_data(data, val, limit, out, resume)
    mixed, _ = teacher_targets(source, train_data, teacher_weight)
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr if lr is not None else (3e-4 if fine_tune else 3e-3),
        seed=seed,
        threads=threads,
        bf16=cpu_has_bf16() if bf16 is None else bf16,
        time_budget_min=time_budget_min,
        widths=s_widths,
        blocks=s_blocks,
        warmup_epochs=min(0.3, epochs / 4) if fine_tune else min(1.0, epochs / 4),
        freeze_bn=fine_tune,
    )
    init = rebuilt.net if fine_tune else None
    train(mixed, val_data, out, cfg, resume=resume, init=init, max_steps=max_steps)
    how = (
        "student initialised with the teacher's weights (BatchNorm folded, statistics fixed) "
        "and fine-tuned"
        if fine_tune
        else "a smaller student trained from random weights"
    )
    done = finalize_run(
        out,
        name,
        val_data,
        flip_tta=False,
        calibrate=True,
        out_dir=ship_to,
        card_extra={
            "distilled_from": {
                "model": spec.name,
                "sha256": sha256_of(source),
                "teacher_weight": teacher_weight,
                "how": f"{how} on teacher_weight x the teacher's mirror-averaged "
                "probabilities + (1 - teacher_weight) x the crowd votes",
            },
            "data": _data_card(data, val, len(train_data), "targets mixed with the teacher's"),
        },
    )
    _echo_finalized(done)


@train_app.command("quantize")
def train_quantize(
    data: Annotated[
        Path, typer.Option("--data", help="FER+-layout folder of faces for calibration (train).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the int8 ONNX and its card.")],
    model: Annotated[
        str, typer.Option("--model", help="Registry name or .onnx (with card) to quantize.")
    ] = "raksha-fer-resnet",
    name: Annotated[str, typer.Option(help="Name of the int8 model.")] = "raksha-fer-resnet-int8",
    val: Annotated[
        Path | None,
        typer.Option("--val", help="FER+-layout folder: measure the int8 model and write metrics."),
    ] = None,
    calibration_faces: Annotated[int, typer.Option("--calibration-faces", min=1)] = 1024,
    check_faces: Annotated[int, typer.Option("--check-faces", min=1)] = 1024,
    seed: Annotated[int, typer.Option()] = 0,
    float_stem: Annotated[
        bool,
        typer.Option(
            "--float-stem/--int8-stem",
            help="Keep the convolutions that read the image in float (one pass loses about "
            "6 points of top-1 agreement when they are int8).",
        ),
    ] = True,
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
) -> None:
    """Quantize an expression model to int8 (weights per channel, activations calibrated on
    real faces), check it against the source, and with --val measure it and write its card."""
    from raksha.expression.factory import resolve_expression_model
    from raksha.ml.evaluation.datasets import read_ferplus
    from raksha.ml.training.quantize import quantize_expression_model

    spec, source = resolve_expression_model(model, models)
    card = source.with_suffix(".json")
    if not card.is_file():
        from raksha import models as registry

        entry = registry.get_entry(model)
        if entry.card is None:
            raise RakshaError(f"model {spec.name!r} has no model card to start the int8 card from")
        card = entry.card
    faces = read_ferplus(data, keep="usable", size=spec.input.size)
    done = quantize_expression_model(
        source,
        card,
        faces,
        out,
        name,
        calibration_faces=calibration_faces,
        check_faces=check_faces,
        seed=seed,
        float_stem=float_stem,
    )
    typer.echo(
        f"wrote {done.onnx} ({done.onnx.stat().st_size / 1e6:.1f} MB) from "
        f"{done.calibration_faces} calibration faces; top-1 agreement with {spec.name} "
        f"{done.top1_agreement:.4f}, max probability difference {done.max_abs_diff:.3f}"
    )
    if val is not None:
        from raksha.ml.evaluation.runner import evaluate_model

        result = evaluate_model(str(done.onnx), val, fmt="ferplus", models_dir=models)
        metrics = result.to_json()
        metrics["dataset"] = f"{val.name} (FER+ majority labels)"
        metrics["command"] = (
            f"raksha eval expression --model {name} --dataset {val} --json out.json"
        )
        written = json.loads(done.card.read_text(encoding="utf-8"))
        written["metrics"] = metrics
        done.card.write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"{val.name}: accuracy {result.accuracy:.4f}, metrics written to {done.card}")


@eval_app.command("expression")
def eval_expression(
    dataset: Annotated[
        list[Path],
        typer.Option(
            "--dataset", help="Labelled faces folder (repeatable: measured side by side)."
        ),
    ],
    model: Annotated[
        str, typer.Option("--model", help="Registry name or path to an .onnx with its card.")
    ] = "",
    fmt: Annotated[
        Literal["ferplus", "folders", "labels"] | None,
        typer.Option("--format", help="Dataset layout (default: guessed per dataset)."),
    ] = None,
    detect: Annotated[
        bool,
        typer.Option(
            "--detect",
            help="Find each face with the runtime detector and crop it as `raksha analyze` "
            "does (for images that are not already tight face crops).",
        ),
    ] = False,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by", help="Break results down by this labels.csv / metadata.csv column."
        ),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            help="Column naming each face's person or movie, resampled whole for the "
            "intervals (default: subject, person, performer, identity or movie if present).",
        ),
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option(
            "--label-column",
            help="A second label column (e.g. observer_majority_6way) to report recall against.",
        ),
    ] = None,
    split: Annotated[
        Literal["all", "train", "tune", "test"],
        typer.Option(
            "--split", help="Only one split by subject (raksha.ml.evaluation.splits); default all."
        ),
    ] = "all",
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Resamples for the 95 % intervals.")
    ] = 1000,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write metrics JSON here.")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Folder for an HTML page with every table and plot."),
    ] = None,
    models: Annotated[
        Path | None, typer.Option("--models", help="Model directory (else RAKSHA_MODELS).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N faces.")] = None,
) -> None:
    """Accuracy, per-class metrics, calibration, small-face robustness and the distress
    operating point of an expression model on one or more labelled face sets, with 95 %
    intervals resampled by subject and an optional breakdown by group."""
    from rich.console import Console

    from raksha.ml.evaluation.html_report import write_html_report
    from raksha.ml.evaluation.report import print_report, print_side_by_side, pyplot
    from raksha.ml.evaluation.runner import EvalOptions, evaluate_many

    # Refuse unusable output paths before the (long) evaluation, not after it.
    if json_out is not None and json_out.is_dir():
        raise RakshaError(f"--json {json_out} is a folder; give a file name")
    if report is not None and report.exists() and not report.is_dir():
        raise RakshaError(f"--report {report} is a file; give a folder")
    if report is not None:
        pyplot()  # a missing plotting extra is said now, not after the evaluation
    names = [d.name for d in dataset]
    if len(set(names)) != len(names):
        raise RakshaError(f"two --dataset folders have the same name: {names}")
    opts = EvalOptions(
        fmt=fmt,
        detect=detect,
        split=split,
        group_by=group_by,
        subject=subject,
        label_column=label_column,
        resamples=bootstrap,
        limit=limit,
    )
    from raksha.ml.evaluation.datasets import DatasetError

    for d in dataset:  # said at once, before the progress line
        if not d.is_dir():
            what = "is not a folder" if d.exists() else "does not exist"
            raise DatasetError(f"dataset folder {d} {what}")
    status = Console(stderr=True)
    what = f"{model or 'the default model'} on {', '.join(names)}"
    status.print(f"evaluating {what} (faces are read, detected and scored; this takes a while)")
    with status.status(f"evaluating {what} …"):
        results = evaluate_many(model or None, dataset, opts, models_dir=models)
    console = Console()
    if len(results) == 1:
        print_report(results[0], console)
    else:
        print_side_by_side(results, console)
    try:
        if report is not None:
            page = write_html_report(results, report)
            console.print(f"report: {page}")
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            doc = (
                results[0].to_json()
                if len(results) == 1
                else {"datasets": {n: r.to_json() for n, r in zip(names, results, strict=True)}}
            )
            json_out.write_text(json.dumps(doc, indent=2) + "\n")
            console.print(f"results: {json_out}")
    except OSError as err:
        raise RakshaError(f"cannot write results: {err.strerror or err}: {err.filename}") from None
