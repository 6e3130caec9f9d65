"""Durable storage: SQLAlchemy tables, Alembic migrations and the incident repository.

from raksha.store import IncidentStore
store = IncidentStore.open("sqlite:///raksha.db")   # or postgresql+psycopg://...
"""

from raksha.store.engine import display_url, make_engine
from raksha.store.errors import ConcurrentUpdate, IncidentNotFound, StoreError
from raksha.store.migrate import current_revision, head_revision, migrate
from raksha.store.outbox import DeliveryStatus, SqlOutbox
from raksha.store.repository import IncidentStore
from raksha.store.serialize import action_to_json, incident_to_json

__all__ = [
    "ConcurrentUpdate",
    "DeliveryStatus",
    "IncidentNotFound",
    "IncidentStore",
    "SqlOutbox",
    "StoreError",
    "action_to_json",
    "current_revision",
    "display_url",
    "head_revision",
    "incident_to_json",
    "make_engine",
    "migrate",
]
