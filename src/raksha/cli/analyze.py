"""`raksha analyze VIDEO` (being written)."""

from __future__ import annotations


def analyze() -> None:
    """Analyse a video: faces, tracks, expressions and distress events."""
    raise NotImplementedError
