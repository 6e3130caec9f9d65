"""Train / tune / test splits of labelled face sets, by subject (performer, movie, person), so
that no person is in two splits: a figure reported on ``test`` comes from people the model was
never trained or tuned on.

The split is a pure function of the set of subject names (ranked by a hash of each name),
so it is the same on every machine, for every command, without a file to keep in step. Sets
that come with a held-out part of their own (SFEW's Val movies) keep it as ``test``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from raksha.errors import RakshaError

Split = Literal["train", "tune", "test"]
SPLITS: tuple[Split, ...] = ("train", "tune", "test")

#: Column names read as the subject (the unit that must not cross splits), in this order.
SUBJECT_COLUMNS: tuple[str, ...] = ("subject", "person", "performer", "identity", "movie")


@dataclass(frozen=True, slots=True)
class SplitRule:
    """How one dataset is split: by ``subject`` column; rows whose ``test_column`` equals
    ``test_value`` are always ``test`` (the set's own held-out part)."""

    subject: str
    test_column: str | None = None
    test_value: str | None = None
    train_share: float = 0.6
    tune_share: float = 0.15


#: The dev sets in ../shared/data and how they are split.
KNOWN_RULES: dict[str, SplitRule] = {
    "taiwan-tcce-performers": SplitRule("performer"),
    # SFEW's own Val movies are the test set; its Train movies are split into train and tune.
    "sfew2-aligned": SplitRule(
        "movie", test_column="sfew_split", test_value="Val", train_share=0.8, tune_share=0.2
    ),
}


class SplitError(RakshaError):
    """A dataset cannot be split as asked (no subject column, unknown split)."""


def subject_column(columns: dict[str, tuple[str, ...]], wanted: str | None = None) -> str | None:
    """The column that names each image's subject: ``wanted`` if given (it must exist), else
    the first of SUBJECT_COLUMNS present, else None (every image its own subject)."""
    if wanted:
        if wanted not in columns:
            raise SplitError(
                f"no column {wanted!r} to group subjects by; columns: {sorted(columns) or 'none'}"
            )
        return wanted
    return next((c for c in SUBJECT_COLUMNS if c in columns), None)


def _bucket(subject: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(
    columns: dict[str, tuple[str, ...]], rule: SplitRule, salt: str = "raksha-split-v1"
) -> npt.NDArray[np.str_]:
    """One of "train", "tune", "test" per row, the same for every row of a subject."""
    if rule.subject not in columns:
        raise SplitError(f"cannot split by {rule.subject!r}: the dataset has no such column")
    subjects = columns[rule.subject]
    fixed: tuple[str, ...] | None = None
    if rule.test_column is not None:
        if rule.test_column not in columns:
            raise SplitError(f"no column {rule.test_column!r} to take the test split from")
        fixed = columns[rule.test_column]
    # A subject with any held-out row is held out whole (a subject is in one split only).
    held = {s for i, s in enumerate(subjects) if fixed is not None and fixed[i] == rule.test_value}
    free = sorted({s for s in subjects if s not in held}, key=lambda s: _bucket(s, salt))
    # Subjects in hash order: the first train_share of them train, the next tune_share tune,
    # the rest test; exact shares of subjects, and a subject's place never depends on others'
    # labels or images.
    n_train = round(rule.train_share * len(free))
    n_tune = round((rule.train_share + rule.tune_share) * len(free)) - n_train
    where: dict[str, Split] = {}
    for rank, s in enumerate(free):
        where[s] = "train" if rank < n_train else "tune" if rank < n_train + n_tune else "test"
    out = np.empty(len(subjects), dtype="<U5")
    for i, s in enumerate(subjects):
        out[i] = "test" if s in held else where[s]
    return out


def rule_for(name: str, columns: dict[str, tuple[str, ...]]) -> SplitRule | None:
    """The split rule of a dataset folder name: a known dev set's, or by its subject column."""
    if name in KNOWN_RULES:
        return KNOWN_RULES[name]
    col = subject_column(columns)
    return SplitRule(col) if col is not None else None
