"""Raksha: accountable distress detection on city cameras."""

import os as _os

# Nothing leaves the premises. onnxruntime (1.29 and later, on Linux too) starts a telemetry
# uploader, a device id and an offline event cache under ~/.cache when it is first loaded,
# unless this is set before that; every Raksha process imports this package first. A
# deployment that sets it itself keeps its value.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
