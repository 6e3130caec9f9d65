"""The store's tables (SQLAlchemy Core). Migrations in `migrations/versions` create them; a
test checks that the migrated schema and these definitions agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from raksha.store.columns import UtcDateTime, json_type

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

INCIDENT_STATES = ("NEW", "ACKNOWLEDGED", "CONFIRMED", "DISPATCHED", "RESOLVED", "DISMISSED")
ACTIONS = (
    "acknowledge",
    "confirm",
    "dispatch",
    "dismiss",
    "resolve",
    "escalate",
    "on_scene",
    "unit_ack",
    "sos_join",
    "sos_cancel",
    "reassign",
)
UNIT_STATES = ("available", "dispatched", "on_scene", "off_duty")
EVIDENCE_KINDS = ("face", "frame_blurred", "clip")
#: Why an officer dismissed an incident (a false alarm).
DISMISS_REASONS = ("no_distress", "not_a_person", "duplicate", "other")
DELIVERY_STATES = ("pending", "delivered", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


incidents = Table(
    "incidents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("camera_id", String(128), nullable=False),
    Column("hotspot_id", String(128), nullable=False),
    Column("station_id", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("last_seen_at", UtcDateTime(), nullable=False),
    Column("track_id", Integer, nullable=True),
    Column("source_id", String(256), nullable=False),
    Column("event_start_s", Float, nullable=True),
    Column("event_end_s", Float, nullable=True),
    Column("peak_distress", Float, nullable=False),
    Column("expression_at_peak", json_type(), nullable=False),
    Column("peak_absolute", Float, nullable=True),
    Column("peak_relative", Float, nullable=True),
    Column("baseline_at_peak", Float, nullable=True),
    Column("top_expression", String(32), nullable=True),
    Column("model_name", String(128), nullable=False),
    Column("model_sha256", String(64), nullable=False),
    Column("thresholds", json_type(), nullable=False),
    Column("route", json_type(), nullable=False),
    Column("person_key", String(256), nullable=True),
    Column("version", Integer, nullable=False),
    # Where the face was last seen (px of the camera's frame), for merging re-detections.
    Column("face_cx", Float, nullable=True),
    Column("face_cy", Float, nullable=True),
    Column("face_w", Float, nullable=True),
    # Where it is and who raised it: a camera (at its hotspot) or a person's SOS.
    Column("origin", String(16), nullable=False, server_default="camera"),
    Column("priority", String(8), nullable=False, server_default="normal"),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("place", Text, nullable=True),
    # The running deadline (acknowledge, dispatch, unit_ack) and the escalation step reached.
    Column("deadline_at", UtcDateTime(), nullable=True),
    Column("deadline_kind", String(16), nullable=True),
    Column("escalation_level", Integer, nullable=False, server_default="0"),
    # The patrol unit it is dispatched to, and the number of its last state-change event.
    Column("unit_id", String(128), nullable=True),
    Column("event_seq", Integer, nullable=False, server_default="1"),
    CheckConstraint(_in("state", INCIDENT_STATES), name="state"),
    Index(None, "station_id", "state", "opened_at"),
    Index(None, "camera_id", "person_key", "last_seen_at"),
    Index(None, "camera_id", "last_seen_at"),
    Index(None, "opened_at"),
    Index(None, "deadline_at"),
)

incident_evidence = Table(
    "incident_evidence",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("n", Integer, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("path", Text, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # SHA-256 of the content (the plain bytes); `sha256` is of the bytes on disk.
    Column("content_sha256", String(64), nullable=True),
    PrimaryKeyConstraint("incident_id", "n"),
    CheckConstraint(_in("kind", EVIDENCE_KINDS), name="kind"),
)

incident_actions = Table(
    "incident_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("action", String(16), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("note", Text, nullable=True),
    Column("unit_id", String(128), nullable=True),
    Column("at", UtcDateTime(), nullable=False),
    # A dismissal's reason (DISMISS_REASONS); None for other actions and older dismissals.
    Column("reason", String(32), nullable=True),
    CheckConstraint(_in("action", ACTIONS), name="action"),
    CheckConstraint(f"reason IS NULL OR {_in('reason', DISMISS_REASONS)}", name="reason"),
    Index(None, "incident_id", "id"),
)

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("case_number", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("placed_by", String(128), nullable=False),
    Column("placed_at", UtcDateTime(), nullable=False),
    # Lifted: by whom, when and why (a hold with lifted_at NULL is in force).
    Column("lifted_by", String(128), nullable=True),
    Column("lifted_at", UtcDateTime(), nullable=True),
    Column("lift_reason", Text, nullable=True),
)

#: Would-be incidents of a model or threshold run in shadow beside the live one: stored to
#: compare on the deployment's own footage, never alerted, never shown as incidents.
shadow_events = Table(
    "shadow_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("camera_id", String(128), nullable=False),
    Column("hotspot_id", String(128), nullable=False),
    Column("station_id", String(128), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("track_id", Integer, nullable=True),
    Column("person_key", String(256), nullable=True),
    Column("event_start_s", Float, nullable=True),
    Column("event_end_s", Float, nullable=True),
    Column("peak_distress", Float, nullable=False),
    Column("model_name", String(128), nullable=False),
    Column("model_sha256", String(64), nullable=False),
    Column("thresholds", json_type(), nullable=False),
    Column("live_incident_id", String(36), nullable=True),
    Index(None, "camera_id", "opened_at"),
)

cameras = Table(
    "cameras",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("hotspot_id", String(128), nullable=True),
    Column("station_id", String(128), nullable=True),
    # Masked for display only: the store never holds a camera password.
    Column("display_url", Text, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("online", Boolean, nullable=False),
    Column("last_frame_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    # Health as last reported by the camera's worker (None until it reports).
    Column("analysed_fps", Float, nullable=True),
    Column("frames_dropped", BigInteger, nullable=True),
    Column("p95_latency_ms", Float, nullable=True),
    # The highest face distress score in its last report period (for an SOS near it).
    Column("max_distress", Float, nullable=True),
)

alerts = Table(
    "alerts",
    metadata,
    # The idempotency key receivers de-duplicate on.
    Column("id", String(36), primary_key=True),
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=True,  # None: a camera alert's (`camera.fault`, `camera.recovered`)
    ),
    Column("station_id", String(128), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("payload", json_type(), nullable=False),
    # Which state change of the incident this alert tells (`new`, `acknowledged`, ...,
    # `job_card`) and its number; a job card's patrol unit.
    Column("event", String(24), nullable=False, server_default="new"),
    Column("seq", Integer, nullable=False, server_default="1"),
    Column("unit_id", String(128), nullable=True),
    Index(None, "incident_id"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "alert_id",
        String(36),
        ForeignKey("alerts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("channel", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_error", Text, nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("alert_id", "channel"),
    CheckConstraint(_in("state", DELIVERY_STATES), name="state"),
    Index(None, "channel", "state", "next_attempt_at"),
)

patrol_units = Table(
    "patrol_units",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("station_id", String(128), nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    # Its base from the site config; its live position once it reports one.
    Column("home_lat", Float, nullable=False),
    Column("home_lon", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("accuracy_m", Float, nullable=True),
    Column("position_at", UtcDateTime(), nullable=True),
    Column("incident_id", String(36), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("version", Integer, nullable=False),
    CheckConstraint(_in("status", UNIT_STATES), name="status"),
    Index(None, "status"),
)

incident_stations = Table(
    "incident_stations",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("station_id", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("incident_id", "station_id"),
    Index(None, "station_id"),
)

sos_messages = Table(
    "sos_messages",
    metadata,
    Column("source_id", String(128), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("sent_at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("incident_id", String(36), nullable=True),
    PrimaryKeyConstraint("source_id", "message_id"),
    Index(None, "received_at"),
)

push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Who subscribed, with the role and station they had then (whom it may be told about).
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("station_id", String(128), nullable=True),
    Column("endpoint", Text, nullable=False),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    UniqueConstraint("endpoint"),
    Index(None, "username"),
)

#: The face watchlist (docs/watchlist.md). A person's entry stays after removal (who added
#: and removed them, why), but their templates are deleted with it.
WATCHLIST_ALERT_STATES = ("pending", "confirmed", "rejected")
WATCHLIST_DECISIONS = ("confirm", "reject")

watchlist_people = Table(
    "watchlist_people",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("category", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    # Where the photos came from (a case file, a warrant), never the photos.
    Column("image_source", Text, nullable=False),
    Column("added_by", String(128), nullable=False),
    Column("added_at", UtcDateTime(), nullable=False),
    Column("review_date", UtcDateTime(), nullable=False),
    Column("removed_at", UtcDateTime(), nullable=True),
    Column("removed_by", String(128), nullable=True),
    Column("removed_reason", Text, nullable=True),
)

watchlist_templates = Table(
    "watchlist_templates",
    metadata,
    Column(
        "person_id",
        String(128),
        ForeignKey("watchlist_people.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("n", Integer, nullable=False),
    # Fernet tokens: the float32 embedding, and a small JPEG of the aligned face.
    Column("embedding_enc", LargeBinary, nullable=False),
    Column("thumbnail_enc", LargeBinary, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("person_id", "n"),
)

watchlist_alerts = Table(
    "watchlist_alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("person_id", String(128), nullable=False),
    Column("camera_id", String(128), nullable=False),
    Column("station_id", String(128), nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("score", Float, nullable=False),
    Column("probe_thumbnail_enc", LargeBinary, nullable=True),
    Column("state", String(16), nullable=False),
    Column("closed_at", UtcDateTime(), nullable=True),
    CheckConstraint(_in("state", WATCHLIST_ALERT_STATES), name="state"),
    Index(None, "station_id", "state"),
)

watchlist_decisions = Table(
    "watchlist_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "alert_id",
        String(36),
        ForeignKey("watchlist_alerts.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("officer", String(128), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    UniqueConstraint("alert_id", "officer"),
    CheckConstraint(_in("decision", WATCHLIST_DECISIONS), name="decision"),
)

CAMERA_FAULT_KINDS = ("video_loss", "frozen", "covered", "moved", "reconnect")

#: Cameras that report their own failures (`raksha.pipeline.camera_health`): one row per
#: fault, open until the camera recovers (`cleared_at`).
camera_alerts = Table(
    "camera_alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("camera_id", String(128), nullable=False),
    Column("station_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    Column("raised_at", UtcDateTime(), nullable=False),
    Column("message", Text, nullable=False),
    # A small, coarsely pixelated JPEG (no face recognisable); None without a frame.
    Column("snapshot", LargeBinary, nullable=True),
    Column("cleared_at", UtcDateTime(), nullable=True),
    Column("acknowledged_at", UtcDateTime(), nullable=True),
    Column("acknowledged_by", String(128), nullable=True),
    CheckConstraint(_in("kind", CAMERA_FAULT_KINDS), name="kind"),
    Index(None, "camera_id", "cleared_at"),
)
