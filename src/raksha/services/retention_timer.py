"""The retention timer: evidence past its retention goes on its own, on a schedule.

`raksha run` and `raksha serve` both start a `RetentionTimer` when `evidence.purge_every_s`
is above 0 (default: hourly). Each round runs the retention purge and the orphan sweep of
`raksha.services.retention`; both may run in several processes at once (each incident is
purged under its row lock, each file is counted by whoever deleted it), so nothing is
deleted or audited twice. A round that fails (the database away, a bug) is logged, with its
traceback, and the next round runs as planned: the thread never dies of it. `stop` is
checked between incidents, so a shutdown never cuts a purge between its audit entry and its
deletions. The first round comes a minute after start (or sooner when the
interval is shorter), not at once: a restart loop does not hammer the disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from raksha.config import RunConfig
from raksha.errors import RakshaError
from raksha.pipeline.spool import Spool
from raksha.services.periodic import Periodic
from raksha.services.retention import (
    OrphanReport,
    PurgeReport,
    purge_expired_evidence,
    sweep_orphaned_evidence,
)
from raksha.store.repository import IncidentStore

log = logging.getLogger("raksha.retention")

#: The first round waits at most this long after start.
FIRST_ROUND_S = 60.0


@dataclass(frozen=True, slots=True)
class RetentionRound:
    purge: PurgeReport
    orphans: OrphanReport


def spooled_evidence(path: Path) -> set[str]:
    """The evidence files of incidents waiting in the spool at `path` (none when it does not
    exist): the orphan sweep keeps them. (Folders of incidents waiting in other spools, such
    as a cluster host's, carry `WAITING_MARK` and are skipped by the sweep itself.)"""
    if not path.is_file():
        return set()
    spool = Spool(path)
    try:
        return {
            str(f["path"])
            for _, doc in spool.pending()
            for f in doc.get("files", [])
            if isinstance(f, dict) and f.get("path")
        }
    finally:
        spool.close()


class RetentionTimer(Periodic):
    name = "raksha-retention"

    def __init__(
        self,
        store: IncidentStore,
        evidence_dir: Path,
        retention_days: int,
        *,
        every_s: float = 3600.0,
        keep: Callable[[], set[str]] | None = None,
        first_after_s: float | None = None,
        sweep_orphans: bool = True,
    ) -> None:
        first = min(every_s, FIRST_ROUND_S) if first_after_s is None else first_after_s
        super().__init__(every_s, first_after_s=first)
        self.store = store
        self.evidence_dir = evidence_dir
        self.retention_days = retention_days
        self.keep = keep
        #: False: the purge only (a cluster's coordinator, which holds no spool of its own).
        self.sweep_orphans = sweep_orphans
        self.rounds = 0
        self.files_deleted = 0

    def tick(self) -> RetentionRound | None:
        """One round now: the purge, then the sweep (None when one of them failed: logged,
        and the next round tries again). Nothing raised here ends the timer's thread."""
        stop = self._stop.is_set
        try:
            purge = purge_expired_evidence(
                self.store, self.evidence_dir, self.retention_days, stop=stop
            )
        except (RakshaError, OSError) as exc:
            log.warning("retention timer: %s", exc)
            return None
        except Exception:
            log.exception("retention timer: the purge failed; the next round tries again")
            return None
        self.files_deleted += purge.files_deleted
        if not self.sweep_orphans:
            self.rounds += 1
            if purge.files_deleted:
                log.info(
                    "retention: deleted %d file(s) of %d incident(s); %d kept for a legal hold",
                    purge.files_deleted,
                    len(purge.incidents),
                    purge.kept_held,
                )
            return RetentionRound(purge, OrphanReport())
        try:
            keep = self.keep() if self.keep is not None else set()
            orphans = sweep_orphaned_evidence(self.store, self.evidence_dir, keep=keep, stop=stop)
        except (RakshaError, OSError) as exc:
            log.warning("retention timer: %s", exc)
            return None
        except Exception:
            log.exception("retention timer: the orphan sweep failed; the next round tries again")
            return None
        self.rounds += 1
        self.files_deleted += orphans.files_deleted
        if purge.files_deleted or orphans.files_deleted:
            log.info(
                "retention: deleted %d file(s) of %d incident(s), %d orphaned; %d kept for a "
                "legal hold",
                purge.files_deleted,
                len(purge.incidents),
                orphans.files_deleted,
                purge.kept_held,
            )
        return RetentionRound(purge, orphans)


def spool_path(cfg: RunConfig) -> Path:
    """Where `raksha run` spools incidents during a database outage."""
    return cfg.incidents.spool or cfg.evidence.dir.parent / "raksha-incident-spool.db"


def retention_timer(
    cfg: RunConfig,
    store: IncidentStore,
    *,
    keep: Callable[[], set[str]] | None = None,
    sweep_orphans: bool = True,
) -> RetentionTimer:
    """The deployment's timer (`evidence.purge_every_s`; 0: it never starts). The sweep
    keeps the evidence waiting in the spool (read from its file unless `keep` says)."""
    where = spool_path(cfg)
    return RetentionTimer(
        store,
        cfg.evidence.dir,
        cfg.evidence.retention_days,
        every_s=cfg.evidence.purge_every_s,
        keep=keep if keep is not None else (lambda: spooled_evidence(where)),
        sweep_orphans=sweep_orphans,
    )
