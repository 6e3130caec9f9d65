"""A compact residual CNN for 48x48 grayscale faces, sized to run fast on one CPU core."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    """Two 3x3 convolutions with an identity shortcut."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        out: torch.Tensor = self.act(x + y)
        return out


class ExpressionNet(nn.Module):
    """Stem at full resolution, then stages that halve the size and widen (strided conv + residual
    blocks), global average pooling, dropout and a linear head giving logits."""

    def __init__(
        self,
        num_classes: int = 8,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: Sequence[int] = (1, 1, 1),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks) + 1:
            raise ValueError("widths needs one entry more than blocks (the stem)")
        layers: list[nn.Module] = [_conv_bn(in_channels, widths[0])]
        for i, n in enumerate(blocks):
            layers.append(_conv_bn(widths[i], widths[i + 1], stride=2))
            layers.extend(_Residual(widths[i + 1]) for _ in range(n))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():
            if isinstance(m, _Residual):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        logits: torch.Tensor = self.head(self.drop(x))
        return logits


class WithSoftmax(nn.Module):
    """Wraps a logit model so that the exported graph outputs probabilities.

    ``temperature`` divides the logits (calibration fitted on validation data); with
    ``flip_tta`` the probabilities are averaged with those of the mirrored face."""

    def __init__(self, net: nn.Module, temperature: float = 1.0, flip_tta: bool = False) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError("temperature must be > 0")
        self.net = net
        self.inv_t = 1.0 / float(temperature)
        self.flip_tta = flip_tta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(x)
        probs = torch.softmax(logits * self.inv_t, dim=1)
        if self.flip_tta:
            mirrored: torch.Tensor = self.net(torch.flip(x, dims=[3]))
            probs = 0.5 * (probs + torch.softmax(mirrored * self.inv_t, dim=1))
        return probs


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
