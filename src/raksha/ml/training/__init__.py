"""Training of Raksha's own expression model (PyTorch lives only in this package).

Import the submodules directly (``raksha.ml.training.loop``); importing this package
itself does not import torch, so ``raksha`` runs without the ``train`` extra.
"""
