"""Raksha: accountable distress detection on city cameras."""

__version__ = "0.1.0"
