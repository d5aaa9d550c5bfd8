"""What `ethos serve` remembers: API keys, the prediction log, feedback and alerts.

One SQLAlchemy database, SQLite by default (``~/.ethos/serving.db``) or PostgreSQL by URL, opened
the same way as the ledger (:mod:`ethos.database`). Two rules shape it:

* **No secrets at rest.** An API key's secret is shown once, when it is created; the store keeps
  a random salt and ``sha256(salt + secret)``. A stolen database does not let anyone call the API.
* **No inputs at rest.** The prediction log holds the SHA-256 of the *PII-masked* input, never
  the text itself (masked or not): enough to tell whether the same input came back, not enough
  to read it. The caller masks; this module never sees raw text.

Tables are created when the store is opened. Every write is one transaction; a micro-batch of
predictions is logged in one, so it is logged whole or not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DBAPIError, IntegrityError

from ethos import database
from ethos.errors import EthosError

__all__ = [
    "DEFAULT_PATH",
    "SCOPES",
    "URL_ENV",
    "AlertRecord",
    "IssuedKey",
    "KeyRecord",
    "PredictionRecord",
    "ServingStore",
    "StoreError",
    "UnknownKey",
    "UnknownPrediction",
    "hash_masked_text",
]

SCOPES: tuple[str, ...] = ("predict", "explain", "feedback", "admin")
"""What a key may do. ``admin`` grants every other scope too (see :meth:`KeyRecord.allows`)."""

URL_ENV = "ETHOS_SERVING_DB"
DEFAULT_PATH = Path("~/.ethos/serving.db")
TOKEN_PREFIX = "ethos"
DEFAULT_RATE_PER_MINUTE = 600
MAX_RATE_PER_MINUTE = 1_000_000
MAX_NAME_CHARS = 200
MAX_LABEL_CHARS = 255
DEFAULT_CACHE_TTL_S = 5.0
"""How long a verified token is trusted without asking the database again; also how long a
revocation can take to reach *other* processes (the revoking process forgets at once)."""
_CACHE_MAX = 10_000
_KEY_ID_HEX = 12
# secrets.token_urlsafe(32): 32 random bytes in unpadded URL-safe base64 are 43 characters.
_SECRET_CHARS = 43
_TOKEN_RE = re.compile(
    rf"{TOKEN_PREFIX}_([0-9a-f]{{{_KEY_ID_HEX}}})_([A-Za-z0-9_-]{{{_SECRET_CHARS}}})", re.ASCII
)
_MAX_TOKEN_CHARS = len(TOKEN_PREFIX) + 2 + _KEY_ID_HEX + _SECRET_CHARS
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_HEX32 = re.compile(r"[0-9a-f]{32}", re.ASCII)
# Serialises table creation across processes (uvicorn workers) on PostgreSQL; "serve" in ASCII.
_SCHEMA_LOCK_KEY = 0x7365727665


class StoreError(EthosError):
    """A serving store that cannot be opened, or a key request that cannot be honoured."""


class UnknownKey(StoreError):
    """No API key has this id."""


class UnknownPrediction(StoreError):
    """Feedback names a prediction id the log does not hold (the API answers 404)."""

    def __init__(self, prediction_id: str) -> None:
        self.prediction_id = prediction_id
        super().__init__(
            f"no logged prediction has the id '{prediction_id[:64]}'",
            hint="quote the prediction_id returned by POST /v1/predict",
        )


ROLE = database.Role(
    noun="serving store", env=URL_ENV, default_path=DEFAULT_PATH, error=StoreError, option="--db"
)


class _UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as naive UTC on both backends and read back as aware UTC.

    SQLite has no time zones and PostgreSQL's ``timestamptz`` answers in the session's zone;
    storing UTC without a zone makes both compare and sort the same. A naive datetime given to
    the store is taken to be UTC already.
    """

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(_KEY_ID_HEX), primary_key=True),
    Column("name", String(MAX_NAME_CHARS), nullable=False),
    Column("salt", String(32), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", String(255), nullable=False),  # comma-separated, in SCOPES order
    Column("rate_per_minute", Integer(), nullable=False),
    Column("created_at", _UTCDateTime(), nullable=False),
    Column("revoked_at", _UTCDateTime()),
)

prediction_log = Table(
    "prediction_log",
    metadata,
    Column("prediction_id", String(32), primary_key=True),
    Column("created_at", _UTCDateTime(), nullable=False),
    Column("key_id", String(_KEY_ID_HEX)),
    Column("model_id", String(255), nullable=False),
    Column("input_sha256", String(64), nullable=False),
    Column("label", String(MAX_LABEL_CHARS), nullable=False),
    Column("probabilities", Text(), nullable=False),  # JSON object: label -> probability
    Column("group", Text()),  # the row's group for the run's sensitive attribute, if given
    Column("latency_ms", Float(), nullable=False),
    Column("thresholds_applied", Boolean(), nullable=False),
    Index("ix_prediction_log_created_at", "created_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column(
        "prediction_id",
        String(32),
        ForeignKey("prediction_log.prediction_id"),
        nullable=False,
    ),
    Column("true_label", String(MAX_LABEL_CHARS), nullable=False),
    Column("created_at", _UTCDateTime(), nullable=False),
    Column("key_id", String(_KEY_ID_HEX)),
    Index("ix_feedback_prediction_id", "prediction_id"),
    Index("ix_feedback_created_at", "created_at"),
)

alerts_table = Table(
    "alerts",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("created_at", _UTCDateTime(), nullable=False),
    Column("metric", String(255), nullable=False),
    Column("value", Float()),
    Column("threshold", Float()),
    Column("message", Text(), nullable=False),
)


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: its public id and the token, which exists only here.

    The token is left out of ``repr`` so that logging the object does not leak it.
    """

    key_id: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class KeyRecord:
    """What the store knows about a key that may be shown: never its secret, salt or hash."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    rate_per_minute: int
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the key has not been revoked."""
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """Whether the key may use ``scope``; ``admin`` keys may use every scope."""
        return scope in self.scopes or "admin" in self.scopes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as ISO 8601 UTC)."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "rate_per_minute": self.rate_per_minute,
            "created_at": self.created_at.isoformat(),
            "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
        }


def hash_masked_text(masked_text: str) -> str:
    """The ``input_sha256`` of a prediction: SHA-256 (hex) of the PII-masked text in UTF-8."""
    return hashlib.sha256(masked_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PredictionRecord:
    """One logged prediction. ``input_sha256`` hashes the masked input; the text is not kept."""

    prediction_id: str
    created_at: datetime
    key_id: str | None
    model_id: str
    input_sha256: str
    label: str
    probabilities: dict[str, float]
    group: str | None
    latency_ms: float
    thresholds_applied: bool

    @staticmethod
    def new_id() -> str:
        """A fresh prediction id (uuid4, 32 hex characters)."""
        return uuid.uuid4().hex


@dataclass(frozen=True)
class AlertRecord:
    """A monitoring alert: ``metric`` crossed ``threshold`` with ``value``."""

    id: int
    created_at: datetime
    metric: str
    value: float | None
    threshold: float | None
    message: str


# -- the store -----------------------------------------------------------------------------


class ServingStore:
    """An open serving store. Close it (or use ``with``) to release its connections.

    ``url``: a SQLite file path or ``sqlite:///PATH``, or ``postgresql+psycopg://...``; default
    ``$ETHOS_SERVING_DB``, else ``~/.ethos/serving.db``. ``cache_ttl_s`` and ``clock`` tune the
    cache of verified tokens (see :meth:`verify`); ``cache_ttl_s=0`` turns it off.
    Safe to share between threads.
    """

    def __init__(
        self,
        url: str | Path | None = None,
        *,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not cache_ttl_s >= 0:
            raise ValueError(f"cache_ttl_s must be >= 0, not {cache_ttl_s}")
        self._url = database.resolve_url(url, ROLE)
        self._engine: Engine = database.make_engine(self._url, ROLE)
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, KeyRecord]] = {}
        self._cache_lock = threading.Lock()
        try:
            self._create_tables()
        except DBAPIError as exc:
            self._engine.dispose()
            raise database.connection_error(self._url, exc, ROLE) from None

    def _create_tables(self) -> None:
        with self._engine.connect() as conn:
            if set(metadata.tables) <= set(inspect(conn).get_table_names()):
                return
            conn.rollback()
            with database.for_writing(conn).begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
                metadata.create_all(conn)

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return database.mask(self._url)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def __enter__(self) -> ServingStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ServingStore({self.url})"

    # -- API keys ----------------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        scopes: Sequence[str] = ("predict",),
        rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
    ) -> IssuedKey:
        """Create a key; the returned token is the only copy of its secret.

        The token is ``ethos_<key_id>_<secret>`` with a 256-bit random secret
        (``secrets.token_urlsafe(32)``). The store keeps a random 16-byte salt and
        ``sha256(salt_hex + secret)``. A fast hash is enough here, unlike for passwords: a
        password is guessable, so it needs a slow KDF to make each guess expensive, but nobody can
        enumerate 2**256 secrets however cheap each try is; and a slow KDF would be paid by every
        request that is not in the verify cache. The salt keeps equal secrets (which will not
        happen) and precomputed tables (which cannot help) out of the picture for good measure.
        """
        clean_name = _check_name(name)
        clean_scopes = _check_scopes(scopes)
        rate = _check_rate(rate_per_minute)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        now = datetime.now(UTC)
        for _attempt in range(5):  # a 48-bit id collides about never; retry if it does
            key_id = secrets.token_hex(_KEY_ID_HEX // 2)
            try:
                with self._engine.connect() as conn, database.for_writing(conn).begin():
                    conn.execute(
                        api_keys.insert().values(
                            key_id=key_id,
                            name=clean_name,
                            salt=salt,
                            secret_hash=_secret_hash(salt, secret),
                            scopes=",".join(clean_scopes),
                            rate_per_minute=rate,
                            created_at=now,
                            revoked_at=None,
                        )
                    )
            except IntegrityError:
                continue
            return IssuedKey(key_id=key_id, token=f"{TOKEN_PREFIX}_{key_id}_{secret}")
        raise RuntimeError("could not find a free key id in 5 tries")  # pragma: no cover

    def revoke_key(self, key_id: str) -> KeyRecord:
        """Revoke a key for good; returns its record with ``revoked_at`` set.

        This process stops accepting the key at once; other processes within their verify cache
        TTL (:data:`DEFAULT_CACHE_TTL_S` seconds by default).
        """
        now = datetime.now(UTC)
        with self._engine.connect() as conn, database.for_writing(conn).begin():
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).one_or_none()
            if row is None:
                raise UnknownKey(
                    f"there is no API key with the id '{key_id[:64]}' in {self.url}",
                    hint="`ethos keys list` shows the key ids (the part after 'ethos_' in a token)",
                )
            if row.revoked_at is not None:
                raise StoreError(
                    f"the API key '{key_id}' ({row.name}) was already revoked at "
                    f"{row.revoked_at.isoformat(timespec='seconds')}",
                    hint="nothing to do; `ethos keys list` shows every key's state",
                )
            conn.execute(
                api_keys.update().where(api_keys.c.key_id == key_id).values(revoked_at=now)
            )
        with self._cache_lock:
            for digest in [d for d, (_, r) in self._cache.items() if r.key_id == key_id]:
                del self._cache[digest]
        return replace(_key_record(row), revoked_at=now)

    def key(self, key_id: str) -> KeyRecord | None:
        """The key with this id (revoked or not), or None."""
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).one_or_none()
        return None if row is None else _key_record(row)

    def list_keys(self) -> list[KeyRecord]:
        """Every key, oldest first, revoked ones included (their ``revoked_at`` is set)."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        with self._engine.connect() as conn:
            return [_key_record(row) for row in conn.execute(query)]

    def verify(self, token: str) -> KeyRecord | None:
        """The key a bearer token belongs to, or None when the token is malformed, unknown,
        revoked or wrong. Never raises on what a client sends (any type, size or characters).

        The token is checked against its format first, so junk never reaches the database; the
        hash comparison is constant-time (:func:`hmac.compare_digest`). Verified tokens are
        cached in this process for ``cache_ttl_s`` seconds, keyed by the token's SHA-256, so a
        busy client costs one lookup per TTL rather than one per request. The price: a key
        revoked by another process (``ethos keys revoke``) keeps working here for up to the TTL.
        Only successes are cached, so a newly created key works at once.
        """
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
            return None
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            return None
        key_id, secret = match.groups()
        digest = hashlib.sha256(token.encode("ascii")).hexdigest()
        now = self._clock()
        with self._cache_lock:
            cached = self._cache.get(digest)
            if cached is not None:
                if cached[0] > now:
                    return cached[1]
                del self._cache[digest]
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).one_or_none()
        if row is None:
            return None
        # Key ids are public, so only the secret's comparison needs to be constant-time.
        matches = hmac.compare_digest(
            _secret_hash(row.salt, secret).encode("ascii"), str(row.secret_hash).encode("ascii")
        )
        if not matches or row.revoked_at is not None:
            return None
        record = _key_record(row)
        if self._cache_ttl_s > 0:
            with self._cache_lock:
                if len(self._cache) >= _CACHE_MAX:
                    self._cache = {d: e for d, e in self._cache.items() if e[0] > now}
                    if len(self._cache) >= _CACHE_MAX:
                        self._cache.clear()
                self._cache[digest] = (now + self._cache_ttl_s, record)
        return record

    # -- predictions and feedback --------------------------------------------------------------

    def log_predictions(self, rows: Sequence[PredictionRecord]) -> None:
        """Log a micro-batch of predictions in one transaction: all of them or none.

        Raises ValueError for a row that is not well formed (an ``input_sha256`` that is not a
        SHA-256 hex digest, which would mean the caller passed text where a hash belongs).
        """
        if not rows:
            return
        values = [_prediction_values(row) for row in rows]
        with self._engine.connect() as conn, database.for_writing(conn).begin():
            conn.execute(prediction_log.insert(), values)

    def prediction(self, prediction_id: str) -> PredictionRecord | None:
        """The logged prediction with this id, or None."""
        if not isinstance(prediction_id, str) or not _HEX32.fullmatch(prediction_id):
            return None
        query = select(prediction_log).where(prediction_log.c.prediction_id == prediction_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else _prediction_record(row)

    def count_predictions(self) -> int:
        """How many predictions the log holds."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(prediction_log)).scalar_one())

    def log_feedback(self, prediction_id: str, true_label: str, key_id: str | None) -> None:
        """Record the true outcome of a logged prediction.

        Raises :class:`UnknownPrediction` when no prediction has that id. A later feedback for the
        same prediction supersedes the earlier one (see :meth:`feedback_rows`); both are kept.
        """
        label = _check_label(true_label)
        if not isinstance(prediction_id, str) or not _HEX32.fullmatch(prediction_id):
            raise UnknownPrediction(str(prediction_id))
        exists = select(prediction_log.c.prediction_id).where(
            prediction_log.c.prediction_id == prediction_id
        )
        with self._engine.connect() as conn, database.for_writing(conn).begin():
            if conn.execute(exists).one_or_none() is None:
                raise UnknownPrediction(prediction_id)
            conn.execute(
                feedback.insert().values(
                    prediction_id=prediction_id,
                    true_label=label,
                    created_at=datetime.now(UTC),
                    key_id=key_id,
                )
            )

    def feedback_rows(self, since: datetime | None = None) -> list[tuple[PredictionRecord, str]]:
        """Predictions paired with their true labels, oldest feedback first.

        One pair per prediction, with its latest feedback. ``since``: only feedback recorded at
        or after this time (a naive datetime is taken as UTC).
        """
        latest = (
            select(func.max(feedback.c.id).label("id"))
            .group_by(feedback.c.prediction_id)
            .scalar_subquery()
        )
        query = (
            select(prediction_log, feedback.c.true_label)
            .join(feedback, feedback.c.prediction_id == prediction_log.c.prediction_id)
            .where(feedback.c.id.in_(latest))
            .order_by(feedback.c.created_at, feedback.c.id)
        )
        if since is not None:
            query = query.where(feedback.c.created_at >= since)
        with self._engine.connect() as conn:
            return [(_prediction_record(row), str(row.true_label)) for row in conn.execute(query)]

    # -- alerts --------------------------------------------------------------------------------

    def log_alert(
        self, metric: str, value: float | None, threshold: float | None, message: str
    ) -> AlertRecord:
        """Record that ``metric`` crossed ``threshold`` with ``value``; returns the stored alert."""
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "created_at": now,
            "metric": str(metric)[:255],
            "value": _finite_or_none(value),
            "threshold": _finite_or_none(threshold),
            "message": str(message),
        }
        with self._engine.connect() as conn, database.for_writing(conn).begin():
            result = conn.execute(alerts_table.insert().values(**values))
            alert_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        return AlertRecord(id=alert_id, **values)

    def alerts(self, limit: int = 100) -> list[AlertRecord]:
        """The newest ``limit`` alerts, newest first."""
        query = (
            select(alerts_table)
            .order_by(alerts_table.c.created_at.desc(), alerts_table.c.id.desc())
            .limit(max(0, int(limit)))
        )
        with self._engine.connect() as conn:
            return [
                AlertRecord(
                    id=int(row.id),
                    created_at=row.created_at,
                    metric=str(row.metric),
                    value=row.value,
                    threshold=row.threshold,
                    message=str(row.message),
                )
                for row in conn.execute(query)
            ]


# -- helpers -------------------------------------------------------------------------------


def _secret_hash(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + secret).encode("ascii")).hexdigest()


def _key_record(row: Row[Any]) -> KeyRecord:
    return KeyRecord(
        key_id=str(row.key_id),
        name=str(row.name),
        scopes=tuple(s for s in str(row.scopes).split(",") if s),
        rate_per_minute=int(row.rate_per_minute),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _check_name(name: object) -> str:
    clean = name.strip() if isinstance(name, str) else ""
    if not clean:
        raise StoreError(
            "an API key needs a name (who or what will use it)",
            hint="pass --name, e.g. --name triage-frontend",
        )
    if len(clean) > MAX_NAME_CHARS or any(not ch.isprintable() for ch in clean):
        raise StoreError(
            f"the key name {clean[:40]!r}... is longer than {MAX_NAME_CHARS} characters or "
            "contains control characters",
            hint="use a short printable name such as triage-frontend",
        )
    return clean


def _check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(scopes, str):
        scopes = [scopes]
    given = [s.strip().lower() if isinstance(s, str) else repr(s) for s in scopes]
    if not given:
        raise StoreError(
            "an API key needs at least one scope", hint=f"choose from {', '.join(SCOPES)}"
        )
    unknown = [s[:40] for s in given if s not in SCOPES]
    if unknown:
        raise StoreError(
            f"unknown API key scope{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint=f"choose from {', '.join(SCOPES)} (repeat --scope for several)",
        )
    return tuple(s for s in SCOPES if s in given)


def _check_rate(rate: object) -> int:
    if isinstance(rate, bool) or not isinstance(rate, int) or not 0 < rate <= MAX_RATE_PER_MINUTE:
        raise StoreError(
            f"the rate limit must be a whole number of requests per minute from 1 to "
            f"{MAX_RATE_PER_MINUTE}, not {rate!r}",
            hint=f"pass e.g. --rate {DEFAULT_RATE_PER_MINUTE}",
        )
    return rate


def _check_label(label: object) -> str:
    if not isinstance(label, str) or not label or len(label) > MAX_LABEL_CHARS:
        raise StoreError(
            f"a label must be a non-empty string of at most {MAX_LABEL_CHARS} characters",
            hint="send one of the model's labels",
        )
    return label


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _prediction_values(row: PredictionRecord) -> dict[str, Any]:
    if not _HEX32.fullmatch(row.prediction_id):
        raise ValueError("prediction_id must be 32 lowercase hex characters (uuid4().hex)")
    if not _HEX64.fullmatch(row.input_sha256):
        raise ValueError(
            "input_sha256 must be the SHA-256 hex digest of the masked input "
            "(hash_masked_text), not the input itself"
        )
    probabilities = {str(k): float(v) for k, v in row.probabilities.items()}
    if not all(math.isfinite(p) for p in probabilities.values()):
        raise ValueError(f"probabilities must be finite numbers, got {probabilities}")
    return {
        "prediction_id": row.prediction_id,
        "created_at": row.created_at,
        "key_id": row.key_id,
        "model_id": row.model_id,
        "input_sha256": row.input_sha256,
        "label": row.label,
        "probabilities": json.dumps(probabilities, ensure_ascii=False, sort_keys=True),
        "group": row.group,
        "latency_ms": float(row.latency_ms),
        "thresholds_applied": bool(row.thresholds_applied),
    }


def _prediction_record(row: Row[Any]) -> PredictionRecord:
    return PredictionRecord(
        prediction_id=str(row.prediction_id),
        created_at=row.created_at,
        key_id=row.key_id,
        model_id=str(row.model_id),
        input_sha256=str(row.input_sha256),
        label=str(row.label),
        probabilities={str(k): float(v) for k, v in json.loads(row.probabilities).items()},
        group=row.group,
        latency_ms=float(row.latency_ms),
        thresholds_applied=bool(row.thresholds_applied),
    )
