"""The training loop: soft-target cross-entropy, class weighting, AdamW with a warm-up and a
cosine decay driven by epochs *or* the wall-clock budget, an EMA of the weights, checkpoints
every epoch, resume, and the best checkpoint kept by validation accuracy."""

from __future__ import annotations

import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from raksha.domain import EXPRESSION_CLASSES
from raksha.ml.evaluation.datasets import FaceDataset
from raksha.ml.training.augment import AugmentConfig, augment_batch
from raksha.ml.training.model import ExpressionNet

#: The network sees pixel * INPUT_SCALE + INPUT_OFFSET (pixels 0..255 -> -1..1).
INPUT_SCALE = 1.0 / 127.5
INPUT_OFFSET = -1.0


@dataclass(frozen=True, slots=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    #: class weight = (share of the most frequent class / share of this class) ** power, capped
    class_weight_power: float = 0.4
    class_weight_cap: float = 4.0
    #: Logit adjustment (Menon et al. 2021): during training the logits get
    #: ``tau * log(class prior)`` added, so that the frequent classes (neutral, happiness) stop
    #: winning by prior alone; the exported model outputs the plain logits. 0 = off.
    logit_adjust: float = 0.0
    ema_decay: float = 0.999
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (1, 1, 1)
    dropout: float = 0.3
    seed: int = 0
    threads: int = 0  # 0 = torch default
    bf16: bool = True  # bfloat16 autocast on CPU (fp32 master weights)
    #: BatchNorm statistics stay fixed (fine-tuning a network rebuilt from a folded export)
    freeze_bn: bool = False
    time_budget_min: float | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(slots=True)
class EpochLog:
    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_macro_recall: float
    lr: float
    seconds: float


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX). Elsewhere PyTorch's
    bfloat16 autocast is emulated and many times slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(targets: npt.NDArray[np.float32], power: float, cap: float) -> torch.Tensor:
    share = targets.sum(axis=0) / max(float(targets.sum()), 1e-9)
    share = np.maximum(share, 1e-6)
    w = np.minimum((share.max() / share) ** power, cap)
    return torch.tensor(w / (w * share).sum(), dtype=torch.float32)  # mean weight 1 over data


def log_priors(targets: npt.NDArray[np.float32]) -> torch.Tensor:
    """log of each class's share of the training targets (floored, so no class is -inf)."""
    share = targets.sum(axis=0) / max(float(targets.sum()), 1e-9)
    return torch.tensor(np.log(np.maximum(share, 1e-4)), dtype=torch.float32)


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy against a target distribution; each sample weighs sum_c w_c * t_c."""
    logp = F.log_softmax(logits.float(), dim=1)
    per = -(targets * logp).sum(dim=1)
    if weights is not None:
        per = per * (targets * weights).sum(dim=1)
    return per.mean()


def to_input(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels -> network input (same mapping as the model card's scale/offset)."""
    return x01 * (255.0 * INPUT_SCALE) + INPUT_OFFSET


def build_model(cfg: TrainConfig) -> ExpressionNet:
    return ExpressionNet(
        num_classes=len(EXPRESSION_CLASSES),
        widths=cfg.widths,
        blocks=cfg.blocks,
        dropout=cfg.dropout,
    )


@torch.no_grad()
def predict_probs(
    net: nn.Module, images: npt.NDArray[np.uint8], batch: int = 256, bf16: bool = False
) -> npt.NDArray[np.float32]:
    """Softmax outputs (N, 8) of ``net`` on (N, H, W) uint8 faces, no augmentation (fp32, or
    bfloat16 autocast for quick validation during training)."""
    net.eval()
    out: list[npt.NDArray[np.float32]] = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(images[i : i + batch]).float().unsqueeze(1)
        x = x * INPUT_SCALE + INPUT_OFFSET
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = net(x)
        out.append(torch.softmax(logits.float(), dim=1).numpy().astype(np.float32))
    return np.concatenate(out) if out else np.zeros((0, len(EXPRESSION_CLASSES)), np.float32)


class _Ema:
    """Exponential moving average of the parameters (buffers are copied)."""

    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = build_like(net)
        self.model.load_state_dict(net.state_dict())
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        ema_p: list[torch.Tensor] = list(self.model.parameters())
        torch._foreach_mul_(ema_p, d)
        torch._foreach_add_(ema_p, [p.detach() for p in net.parameters()], alpha=1 - d)
        for eb, b in zip(self.model.buffers(), net.buffers(), strict=True):
            eb.copy_(b)


def freeze_batchnorm(net: nn.Module) -> None:
    """Put every BatchNorm layer in eval mode: running statistics fixed, affine still trained."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def build_like(net: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(net)


def _schedule(progress: float, warmup: float) -> float:
    if progress < warmup:
        return max(progress / max(warmup, 1e-9), 0.01)
    t = (progress - warmup) / max(1 - warmup, 1e-9)
    return 0.5 * (1 + math.cos(math.pi * min(t, 1.0))) * 0.99 + 0.01


def _accuracy(probs: npt.NDArray[np.float32], data: FaceDataset) -> tuple[float, float, float]:
    pred = probs.argmax(axis=1)
    keep = data.labels >= 0
    acc = float((pred[keep] == data.labels[keep]).mean()) if keep.any() else 0.0
    recalls = [
        float((pred[data.labels == k] == k).mean())
        for k in range(len(EXPRESSION_CLASSES))
        if (data.labels == k).any()
    ]
    loss = float(-(data.targets * np.log(np.clip(probs, 1e-7, 1))).sum(axis=1).mean())
    return acc, float(np.mean(recalls)) if recalls else 0.0, loss


Reporter = Callable[[str], None]


def _print(msg: str) -> None:
    print(msg, flush=True)


def train(
    train_data: FaceDataset,
    val_data: FaceDataset | None,
    out_dir: Path,
    cfg: TrainConfig,
    *,
    resume: bool = False,
    report: Reporter = _print,
    max_steps: int | None = None,
    init: nn.Module | None = None,
) -> dict[str, Any]:
    """Train and return a summary; ``out_dir`` gets last.pt, best.pt and history.json.

    ``max_steps`` stops after that many optimiser steps (for tests and smoke runs). ``init``
    is a network of the same architecture to start from instead of random weights."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    net = build_model(cfg)
    if init is not None:
        net.load_state_dict(init.state_dict())
    weights = class_weights(train_data.targets, cfg.class_weight_power, cfg.class_weight_cap)
    adjust = cfg.logit_adjust * log_priors(train_data.targets) if cfg.logit_adjust else None
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = _Ema(net, cfg.ema_decay)
    steps_per_epoch = max(1, len(train_data) // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    start_epoch, step, elapsed_before = 0, 0, 0.0
    best_acc = -1.0
    history: list[dict[str, Any]] = []
    rng = np.random.default_rng(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    last = out_dir / "last.pt"
    if resume and last.is_file():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        net.load_state_dict(ck["model"])
        ema.model.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        start_epoch, step = ck["epoch"], ck["step"]
        elapsed_before = ck["elapsed"]
        best_acc = ck["best_acc"]
        history = ck["history"]
        rng = np.random.default_rng([cfg.seed, start_epoch])
        g = torch.Generator().manual_seed(cfg.seed * 1000 + start_epoch)
        report(f"resumed from {last} at epoch {start_epoch} (best val acc {best_acc:.4f})")
    report(
        f"train {len(train_data)} faces, val {len(val_data) if val_data else 0}; "
        f"{steps_per_epoch} steps/epoch; class weights "
        + ", ".join(
            f"{c}={w:.2f}" for c, w in zip(EXPRESSION_CLASSES, weights.tolist(), strict=True)
        )
    )
    t0 = time.monotonic()
    budget_s = cfg.time_budget_min * 60 if cfg.time_budget_min else None
    warm = cfg.warmup_epochs / max(cfg.epochs, 1)
    tty = sys.stdout.isatty()
    stop = False
    epoch = start_epoch
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        if cfg.freeze_bn:
            freeze_batchnorm(net)
        te = time.monotonic()
        order = rng.permutation(len(train_data))
        losses: list[float] = []
        lr = cfg.lr
        for b in range(steps_per_epoch):
            idx = np.sort(order[b * cfg.batch_size : (b + 1) * cfg.batch_size])
            x = to_input(augment_batch(train_data.images[idx], cfg.augment, rng, g))
            t = torch.from_numpy(train_data.targets[idx])
            elapsed = elapsed_before + time.monotonic() - t0
            progress = step / max(total_steps, 1)
            if budget_s:
                progress = max(progress, elapsed / budget_s)
            lr = cfg.lr * _schedule(progress, warm)
            for grp in opt.param_groups:
                grp["lr"] = lr
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = net(x)
            if adjust is not None:
                logits = logits.float() + adjust
            loss = soft_cross_entropy(logits, t, weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            ema.update(net, step)
            step += 1
            losses.append(float(loss.detach()))
            if tty or b % 50 == 0:
                msg = (
                    f"epoch {epoch + 1}/{cfg.epochs} step {b + 1}/{steps_per_epoch} "
                    f"loss {np.mean(losses[-50:]):.4f} lr {lr:.2e}"
                )
                if tty:
                    print("\r" + msg, end="", flush=True)
                else:
                    report(msg)
            if max_steps is not None and step >= max_steps:
                stop = True
                break
            if budget_s and progress >= 1.0:
                stop = True
                break
        if tty:
            print(flush=True)
        entry = EpochLog(
            epoch + 1,
            float(np.mean(losses)),
            float("nan"),
            float("nan"),
            float("nan"),
            lr,
            time.monotonic() - te,
        )
        if val_data is not None and len(val_data):
            probs = predict_probs(ema.model, val_data.images, bf16=cfg.bf16)
            entry.val_accuracy, entry.val_macro_recall, entry.val_loss = _accuracy(probs, val_data)
        history.append(asdict(entry))
        improved = entry.val_accuracy > best_acc or val_data is None
        if improved:
            best_acc = entry.val_accuracy if val_data is not None else best_acc
            torch.save(
                {
                    "model": ema.model.state_dict(),
                    "config": _config_dict(cfg),
                    "epoch": epoch + 1,
                    "val_accuracy": entry.val_accuracy,
                    "val_macro_recall": entry.val_macro_recall,
                },
                out_dir / "best.pt",
            )
        elapsed_total = elapsed_before + time.monotonic() - t0
        torch.save(
            {
                "model": net.state_dict(),
                "ema": ema.model.state_dict(),
                "optimizer": opt.state_dict(),
                "epoch": epoch + 1,
                "step": step,
                "elapsed": elapsed_total,
                "best_acc": best_acc,
                "history": history,
                "config": _config_dict(cfg),
            },
            last,
        )
        (out_dir / "history.json").write_text(json.dumps(history, indent=1))
        report(
            f"epoch {epoch + 1}/{cfg.epochs} done in {entry.seconds:.0f}s: train loss "
            f"{entry.train_loss:.4f} | val loss {entry.val_loss:.4f} acc {entry.val_accuracy:.4f} "
            f"macro recall {entry.val_macro_recall:.4f}{' *best*' if improved else ''} | "
            f"elapsed {elapsed_total / 60:.1f} min"
        )
        if stop:
            break
    return {
        "epochs_run": epoch + 1,
        "steps": step,
        "best_val_accuracy": best_acc,
        "train_seconds": elapsed_before + time.monotonic() - t0,
        "history": history,
        "class_weights": dict(zip(EXPRESSION_CLASSES, weights.tolist(), strict=True)),
    }


def _config_dict(cfg: TrainConfig) -> dict[str, Any]:
    return asdict(cfg)


def load_checkpoint_model(path: Path) -> tuple[ExpressionNet, dict[str, Any]]:
    """The network stored in a best.pt / last.pt checkpoint (EMA weights for last.pt)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    c = dict(ck["config"])
    aug = c.pop("augment", None)
    cfg = TrainConfig(
        **{
            **c,
            "widths": tuple(c["widths"]),
            "blocks": tuple(c["blocks"]),
            "augment": AugmentConfig(**aug) if isinstance(aug, dict) else AugmentConfig(),
        }
    )
    net = build_model(cfg)
    net.load_state_dict(ck["ema"] if "ema" in ck else ck["model"])
    net.eval()
    return net, ck
