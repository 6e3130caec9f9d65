"""Batch augmentations that mimic real camera faces (run on whole batches with torch ops)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation. Pixel values are in [0, 1]."""

    flip: float = 0.5
    scale: tuple[float, float] = (0.85, 1.2)  # > 1 zooms out (looser crop)
    shift: float = 0.1  # fraction of the image side
    rotate_deg: float = 15.0
    brightness: float = 0.2
    contrast: tuple[float, float] = (0.6, 1.4)
    blur_p: float = 0.2
    noise_p: float = 0.2
    noise_std: tuple[float, float] = (0.01, 0.05)
    jpeg_p: float = 0.15
    jpeg_quality: tuple[int, int] = (25, 80)
    downscale_p: float = 0.25
    downscale_sizes: tuple[int, ...] = (14, 16, 20, 24, 32)
    erase_p: float = 0.25


def jpeg_some(
    images: npt.NDArray[np.uint8], p: float, quality: tuple[int, int], rng: np.random.Generator
) -> npt.NDArray[np.uint8]:
    """Re-encode a random share ``p`` of (N, H, W) uint8 images as JPEG at a random quality."""
    out = images.copy()
    for i in np.flatnonzero(rng.random(len(images)) < p):
        q = int(rng.integers(quality[0], quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", images[i], [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            dec = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
            if dec is not None:
                out[i] = dec
    return out


def _random_affine(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    lo, hi = math.log(cfg.scale[0]), math.log(cfg.scale[1])
    s = torch.exp(torch.empty(n).uniform_(lo, hi, generator=g))
    a = torch.empty(n).uniform_(-cfg.rotate_deg, cfg.rotate_deg, generator=g) * math.pi / 180
    tx = torch.empty(n).uniform_(-cfg.shift, cfg.shift, generator=g) * 2
    ty = torch.empty(n).uniform_(-cfg.shift, cfg.shift, generator=g) * 2
    flip = torch.where(torch.rand(n, generator=g) < cfg.flip, -1.0, 1.0)
    cos, sin = torch.cos(a) * s, torch.sin(a) * s
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(2 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    return (k[:, None] * k[None, :])[None, None]


def augment_batch(
    images: npt.NDArray[np.uint8],
    cfg: AugmentConfig,
    rng: np.random.Generator,
    g: torch.Generator,
) -> torch.Tensor:
    """(N, H, W) uint8 gray faces -> (N, 1, H, W) float32 in [0, 1], augmented."""
    images = jpeg_some(images, cfg.jpeg_p, cfg.jpeg_quality, rng)
    x = torch.from_numpy(images).float().div_(255.0).unsqueeze(1)
    n, _, h, w = x.shape
    x = _random_affine(x, cfg, g)
    # small faces: down to a random size and back up
    pick = torch.rand(n, generator=g) < cfg.downscale_p
    if pick.any():
        size = int(cfg.downscale_sizes[int(rng.integers(len(cfg.downscale_sizes)))])
        small = F.interpolate(x[pick], size=(size, size), mode="area")
        x[pick] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    pick = torch.rand(n, generator=g) < cfg.blur_p
    if pick.any():
        k = _gaussian_kernel(float(rng.uniform(0.5, 1.3)))
        pad = k.shape[-1] // 2
        x[pick] = F.conv2d(F.pad(x[pick], (pad,) * 4, mode="replicate"), k)
    c = torch.empty(n, 1, 1, 1).uniform_(cfg.contrast[0], cfg.contrast[1], generator=g)
    b = torch.empty(n, 1, 1, 1).uniform_(-cfg.brightness, cfg.brightness, generator=g)
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * c + mean + b
    pick = torch.rand(n, generator=g) < cfg.noise_p
    if pick.any():
        std = float(rng.uniform(*cfg.noise_std))
        x[pick] = x[pick] + torch.randn(x[pick].shape, generator=g) * std
    pick_idx = torch.nonzero(torch.rand(n, generator=g) < cfg.erase_p).flatten().tolist()
    for i in pick_idx:  # random erasing of a small rectangle (occlusion: hands, masks)
        eh, ew = int(rng.integers(h // 8, h // 3)), int(rng.integers(w // 8, w // 3))
        y0, x0 = int(rng.integers(0, h - eh)), int(rng.integers(0, w - ew))
        x[i, :, y0 : y0 + eh, x0 : x0 + ew] = float(rng.random())
    return x.clamp_(0.0, 1.0)
