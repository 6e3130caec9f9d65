"""Weight averaging of fine-tuned expression networks ("model soups", WiSE-FT).

Several runs fine-tuned from the same starting weights stay in one basin of the loss; the
average of their weights is one network of the same size, so it costs nothing more per face,
and it tends to hold up better on data unlike the training data than any single run. Mixing
the average back towards the starting weights (``alpha`` < 1) trades some of what the
fine-tuning learnt for what the starting network knew.

The result is written as a checkpoint (``best.pt``) that ``finalize_run`` exports like any
training run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raksha.errors import ModelError
from raksha.ml.training.export import sha256_of


@dataclass(frozen=True, slots=True)
class SoupMember:
    run: Path
    sha256: str
    epoch: int
    val_accuracy: float | None
    config: dict[str, Any]


def read_member(run: Path) -> tuple[SoupMember, dict[str, torch.Tensor]]:
    """The best checkpoint of one training run: what it is, and its (EMA) weights."""
    path = run / "best.pt"
    if not path.is_file():
        raise ModelError(f"soup: no checkpoint at {path} (a finished `raksha train` run?)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle / zip errors: a truncated or foreign file
        raise ModelError(f"soup: cannot read {path}: {exc}") from None
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise ModelError(f"soup: {path} is not a training checkpoint (no model or config)")
    member = SoupMember(
        run=run,
        sha256=sha256_of(path),
        epoch=int(ck.get("epoch", 0)),
        val_accuracy=ck.get("val_accuracy"),
        config=dict(ck["config"]),
    )
    return member, dict(ck["model"])


def average_states(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    """The weighted sum of state dicts that share every key and shape (weights sum to 1).

    Integer buffers (BatchNorm's batch counter) are taken from the first state."""
    if not states or len(states) != len(weights):
        raise ValueError("one weight per state, and at least one state")
    if abs(sum(weights) - 1.0) > 1e-6 or any(w < 0 for w in weights):
        raise ValueError(f"soup weights must be >= 0 and sum to 1, got {list(weights)}")
    keys = list(states[0].keys())
    for i, s in enumerate(states[1:], start=2):
        if list(s.keys()) != keys:
            missing = sorted(set(keys) ^ set(s.keys()))
            raise ModelError(f"soup: network {i} has other layers than the first ({missing[:3]})")
        for k in keys:
            if tuple(s[k].shape) != tuple(states[0][k].shape):
                raise ModelError(
                    f"soup: layer {k} is {tuple(s[k].shape)} in network {i}, "
                    f"{tuple(states[0][k].shape)} in the first"
                )
    out: dict[str, torch.Tensor] = {}
    for k in keys:
        first = states[0][k]
        if not torch.is_floating_point(first):
            out[k] = first.clone()
            continue
        acc = torch.zeros_like(first, dtype=torch.float64)
        for s, w in zip(states, weights, strict=True):
            acc += w * s[k].to(torch.float64)
        out[k] = acc.to(first.dtype)
    return out


def _arch(config: Mapping[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(config["widths"]), tuple(config["blocks"])


def make_soup(
    runs: Sequence[Path],
    out_dir: Path,
    *,
    base: nn.Module | None = None,
    base_name: str | None = None,
    alpha: float = 1.0,
) -> dict[str, Any]:
    """Average the best checkpoints of ``runs`` (equal weights), then mix with ``base``:
    ``alpha * mean(runs) + (1 - alpha) * base``. Writes ``out_dir/best.pt`` and returns what
    the model card should say about it."""
    if not runs:
        raise ModelError("soup: give at least one run")
    if not 0.0 <= alpha <= 1.0:
        raise ModelError(f"soup: alpha must be within 0..1, got {alpha}")
    if alpha < 1.0 and base is None:
        raise ModelError("soup: alpha below 1 mixes with a base network; give --base")
    members = [read_member(r) for r in runs]
    arch = _arch(members[0][0].config)
    for m, _ in members[1:]:
        if _arch(m.config) != arch:
            raise ModelError(
                f"soup: {m.run} has widths/blocks {_arch(m.config)}, the first run {arch}"
            )
    states = [s for _, s in members]
    weights = [alpha / len(states)] * len(states)
    if base is not None and alpha < 1.0:
        states.append(base.state_dict())
        weights.append(1.0 - alpha)
    soup = average_states(states, weights)
    first = members[0][0]
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": soup,
            "config": first.config,
            "epoch": first.epoch,
            "val_accuracy": None,
            "soup": True,
        },
        out_dir / "best.pt",
    )
    return {
        "method": "uniform weight average of fine-tuned runs"
        + (", mixed with the starting weights (WiSE-FT)" if base is not None and alpha < 1 else ""),
        "alpha": alpha,
        "base": base_name if alpha < 1.0 else None,
        "members": [
            {
                "run": m.run.name,
                "best_pt_sha256": m.sha256,
                "best_epoch": m.epoch,
                "val_accuracy_pytorch_no_tta": m.val_accuracy,
                "seed": m.config.get("seed"),
                "lr": m.config.get("lr"),
                "epochs": m.config.get("epochs"),
                "logit_adjust": m.config.get("logit_adjust"),
            }
            for m, _ in members
        ],
    }
