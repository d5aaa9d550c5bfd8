"""What `ethos serve` remembers: API keys, the prediction log, feedback, rate-limit buckets, the
monitor's windows and alerts.

One SQLAlchemy database, SQLite by default (``~/.ethos/serving.db``) or PostgreSQL by URL, opened
the same way as the ledger (:mod:`ethos.database`). It is the one place every worker process and
every replica of a model shares, so whatever must hold across them lives here: a key's rate limit
(:meth:`ServingStore.take_token`), the monitor's rolling windows (:meth:`ServingStore.
add_observations`) and which alerts are active (one row per active alert, raised and cleared
once). Three rules shape it:

* **No secrets at rest.** An API key's secret is shown once, when it is created; the store keeps
  a random salt and ``sha256(salt + secret)``. A stolen database does not let anyone call the API.
* **No inputs at rest, unless asked.** The prediction log holds the SHA-256 of the *PII-masked*
  input: enough to tell whether the same input came back, not enough to read it. Only a server
  started with ``--keep-inputs`` also keeps the masked text itself (``prediction_inputs``), so
  that labelled feedback can be learnt from (:meth:`ServingStore.feedback_examples`); raw text
  is never kept. The caller masks; this module never sees raw text. Generations of a causal-LM
  run (``generation_log``) follow the same rule for the prompt and the response.
* **Unavailable is said, not guessed.** A database that cannot be reached, whose file is gone or
  that stays locked raises :class:`StoreUnavailable` (the API answers 503); nothing is served on
  the assumption that it would have said yes.

Tables are created when the store is opened (and the alerts table of an older store gains its
columns; a table added later, such as ``prediction_inputs``, is simply created). Every write is
one transaction; a micro-batch of predictions is logged in one (with its kept inputs), so it is
logged whole or not at all. Rate-limit buckets and monitor observations are written through a
second connection pool that does not wait for the disk on commit (SQLite ``synchronous=NORMAL``,
PostgreSQL ``synchronous_commit=off``): a crash can roll back their last fraction of a second,
which costs a few tokens or observations, never consistency, and spares each limit check a wait
for the disk (measured 0.13 ms a check on SQLite; docs/serving.md, "Workers and replicas").
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    TypeDecorator,
    delete,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.sql.expression import ScalarSelect

from ethos import database
from ethos.errors import EthosError

__all__ = [
    "DEFAULT_PATH",
    "SCOPES",
    "URL_ENV",
    "AlertRecord",
    "FeedbackExample",
    "GenerationRecord",
    "IssuedKey",
    "KeyRecord",
    "LabelRow",
    "MaskedInput",
    "ObservationRow",
    "ObservationWindow",
    "PredictionRecord",
    "ServingStore",
    "StoreError",
    "StoreUnavailable",
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


class StoreUnavailable(StoreError):
    """The database did not answer: down, unreachable, its file gone, or locked for too long.

    The API answers 503 with it: a request whose rate limit cannot be checked, or whose
    prediction cannot be recorded for the monitor, is refused rather than served blind.
    """


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

# Kept only by a server started with --keep-inputs; a table of its own rather than columns of
# prediction_log, so that create_all adds it to an older store with no ALTER TABLE, and a log
# without kept inputs costs nothing.
prediction_inputs = Table(
    "prediction_inputs",
    metadata,
    Column(
        "prediction_id",
        String(32),
        ForeignKey("prediction_log.prediction_id"),
        primary_key=True,
    ),
    Column("masked_text", Text(), nullable=False),  # what input_sha256 is the hash of
    Column("masked_pair", Text()),  # the second text of a text-pair model, masked too
)

# One row per generated response of a causal-LM run (POST /v1/generate): the hashes of the
# PII-masked prompt and response, the settings and seed that reproduce it; the masked texts
# themselves only with --keep-inputs (the rule of prediction_inputs). A table of its own, so
# create_all adds it to an older store and the prediction log keeps its meaning.
generation_log = Table(
    "generation_log",
    metadata,
    Column("generation_id", String(32), primary_key=True),
    Column("created_at", _UTCDateTime(), nullable=False),
    Column("key_id", String(_KEY_ID_HEX)),
    Column("model_id", String(255), nullable=False),
    Column("prompt_sha256", String(64), nullable=False),
    Column("response_sha256", String(64), nullable=False),
    Column("settings", Text(), nullable=False),  # JSON: max_new_tokens, temperature, top_p, seed
    Column("latency_ms", Float(), nullable=False),
    Column("masked_prompt", Text()),  # kept with --keep-inputs only
    Column("masked_response", Text()),  # kept with --keep-inputs only
    Index("ix_generation_log_created_at", "created_at"),
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
    # Added after the first release (see _upgrade_alerts): whose monitor raised it, when it was
    # cleared, and the metric again while it is active. NULLs are distinct in a unique index on
    # both backends, so (model_id, active_metric) allows one active alert per metric and model
    # and any number of cleared ones: a second worker's INSERT of the same alert fails.
    Column("model_id", String(255)),
    Column("cleared_at", _UTCDateTime()),
    Column("active_metric", String(255)),
    Index("ux_alerts_active", "model_id", "active_metric", unique=True),
)
_ADDED_ALERT_COLUMNS = ("model_id", "cleared_at", "active_metric")

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("key_id", String(_KEY_ID_HEX), primary_key=True),
    Column("tokens", Double(), nullable=False),
    Column("updated_at", Double(), nullable=False),  # epoch seconds on the database's clock
    Column("granted", Boolean(), nullable=False),  # whether the last request took a token
)

_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only
monitor_observations = Table(
    "monitor_observations",
    metadata,
    Column("id", _BIG_ID, primary_key=True, autoincrement=True),  # the shared order of arrival
    Column("model_id", String(255), nullable=False),
    Column("prediction_id", String(64), nullable=False),
    Column("observed_at", Double(), nullable=False),
    Column("length", Integer(), nullable=False),
    Column("oov_rate", Double(), nullable=False),
    Column("positive_prob", Double(), nullable=False),
    Column("predicted_positive", Boolean(), nullable=False),
    Column("group", Text()),
    Column("embedding", LargeBinary(), nullable=False),  # little-endian float16
    Column("true_positive", Boolean()),  # the fed-back label, once there is one
    Column("labelled_at", Double()),
    Index("ux_monitor_observations_prediction", "model_id", "prediction_id", unique=True),
    Index("ix_monitor_observations_model", "model_id", "id"),
    Index("ix_monitor_observations_labelled", "model_id", "labelled_at"),
)

monitor_totals = Table(
    "monitor_totals",
    metadata,
    Column("model_id", String(255), primary_key=True),
    Column("pruned", BigInteger(), nullable=False),  # observations trimmed away so far
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
    """One logged prediction. ``input_sha256`` hashes the masked input; the text itself is kept
    only with ``--keep-inputs`` (:class:`MaskedInput`)."""

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
class MaskedInput:
    """The PII-masked input of one prediction, kept when the server runs with ``--keep-inputs``.

    ``masked_text`` is the very string whose SHA-256 is the prediction's ``input_sha256``;
    ``masked_pair`` is the second text of a text-pair model, masked too (None otherwise).
    """

    masked_text: str
    masked_pair: str | None = None


@dataclass(frozen=True)
class GenerationRecord:
    """One logged generation of a causal-LM run. Both hashes are of PII-masked text; the masked
    texts themselves are set only by a server started with ``--keep-inputs`` (else None)."""

    generation_id: str
    created_at: datetime
    key_id: str | None
    model_id: str
    prompt_sha256: str
    response_sha256: str
    settings: dict[str, Any]
    latency_ms: float
    masked_prompt: str | None = None
    masked_response: str | None = None


@dataclass(frozen=True)
class FeedbackExample:
    """A labelled prediction as retraining reads it: what was decided, what was true, and the
    masked input when it was kept (``masked_text`` is None for a prediction logged without
    ``--keep-inputs``, which can be counted but not learnt from)."""

    prediction_id: str
    model_id: str
    predicted_label: str
    true_label: str
    group: str | None
    prediction_created_at: datetime
    feedback_created_at: datetime
    masked_text: str | None
    masked_pair: str | None


@dataclass(frozen=True)
class AlertRecord:
    """A monitoring alert: ``metric`` crossed ``threshold`` with ``value``.

    ``model_id`` is the served model whose monitor raised it (None for :meth:`ServingStore.
    log_alert`'s one-off records); ``cleared_at`` is set once the metric came back.
    """

    id: int
    created_at: datetime
    metric: str
    value: float | None
    threshold: float | None
    message: str
    model_id: str | None = None
    cleared_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None


@dataclass(frozen=True)
class ObservationRow:
    """One served prediction as the monitor keeps it, compactly: about 0.8 kB with a 384-wide
    embedding, which is stored as little-endian float16 bytes (the caller encodes it)."""

    prediction_id: str
    length: int
    oov_rate: float
    positive_prob: float
    predicted_positive: bool
    group: str | None
    embedding: bytes


@dataclass(frozen=True)
class LabelRow:
    """A fed-back label with what the model decided for that prediction."""

    predicted_positive: bool
    true_positive: bool
    group: str | None


@dataclass(frozen=True)
class ObservationWindow:
    """What one monitor check reads: the newest observations and labels, oldest first.

    ``total`` counts every observation recorded for the model (trimmed ones too), ``retained``
    those still held; ``version`` changes whenever an observation or a label is added.
    """

    observations: list[ObservationRow]
    labelled: list[LabelRow]
    total: int
    retained: int
    version: tuple[int, int, int, float]


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
        self._relaxed: Engine = database.make_engine(self._url, ROLE)
        event.listen(self._relaxed, "connect", _relaxer(self._relaxed.dialect.name))
        self._cache_ttl_s = cache_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, KeyRecord]] = {}
        self._cache_lock = threading.Lock()
        try:
            self._create_tables()
        except DBAPIError as exc:
            self.close()
            raise database.connection_error(self._url, exc, ROLE) from None

    def _create_tables(self) -> None:
        with self._engine.connect() as conn:
            if _schema_current(conn):
                return
            conn.rollback()
            with database.for_writing(conn).begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
                metadata.create_all(conn)
                _upgrade_alerts(conn)

    @contextmanager
    def _connect(self, *, write: bool = False, relaxed: bool = False) -> Iterator[Connection]:
        """A connection (in a write transaction with ``write``) whose loss is a StoreUnavailable.

        ``relaxed`` uses the pool that commits without waiting for the disk (module docstring).
        Only failures to reach or use the database are translated; an IntegrityError and the
        store's own errors pass through unchanged.
        """
        engine = self._relaxed if relaxed else self._engine
        try:
            with engine.connect() as conn:
                if write:
                    with database.for_writing(conn).begin():
                        yield conn
                else:
                    yield conn
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: Exception) -> StoreUnavailable:
        cause = getattr(exc, "orig", None) or exc
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return StoreUnavailable(
            f"the serving database {self.url} is unavailable: {database.mask(detail)}",
            hint="requests are refused (503) until it answers again: check that the database "
            "server is running and reachable, or that the SQLite file is in place and writable",
        )

    @property
    def url(self) -> str:
        """The database URL with any password masked."""
        return database.mask(self._url)

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()
        self._relaxed.dispose()

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
                with self._connect(write=True) as conn:
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
        with self._connect(write=True) as conn:
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
        with self._connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).one_or_none()
        return None if row is None else _key_record(row)

    def list_keys(self) -> list[KeyRecord]:
        """Every key, oldest first, revoked ones included (their ``revoked_at`` is set)."""
        query = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        with self._connect() as conn:
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
        with self._connect() as conn:
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

    def log_predictions(
        self, rows: Sequence[PredictionRecord], inputs: Sequence[MaskedInput] | None = None
    ) -> None:
        """Log a micro-batch of predictions in one transaction: all of them or none.

        ``inputs``: the masked input of each row, in the same order (``--keep-inputs``); they are
        written in the same transaction, so a prediction is never logged without the input it
        was meant to keep. None keeps only the hashes.

        Raises ValueError for a row that is not well formed (an ``input_sha256`` that is not a
        SHA-256 hex digest, which would mean the caller passed text where a hash belongs), or for
        inputs that do not match the rows (a different count, or a text that is not the one
        ``input_sha256`` hashes: the kept text must be the masked text the log identifies).
        """
        if not rows:
            return
        values = [_prediction_values(row) for row in rows]
        kept = None if inputs is None else _input_values(rows, inputs)
        with self._connect(write=True) as conn:
            conn.execute(prediction_log.insert(), values)
            if kept:
                conn.execute(prediction_inputs.insert(), kept)

    def prediction(self, prediction_id: str) -> PredictionRecord | None:
        """The logged prediction with this id, or None."""
        if not isinstance(prediction_id, str) or not _HEX32.fullmatch(prediction_id):
            return None
        query = select(prediction_log).where(prediction_log.c.prediction_id == prediction_id)
        with self._connect() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else _prediction_record(row)

    def count_predictions(self) -> int:
        """How many predictions the log holds."""
        with self._connect() as conn:
            return int(conn.execute(select(func.count()).select_from(prediction_log)).scalar_one())

    def log_generations(self, rows: Sequence[GenerationRecord]) -> None:
        """Log a batch of generations in one transaction: all of them or none.

        Raises ValueError for a row that is not well formed: a hash that is not a SHA-256 hex
        digest, or a kept masked text that is not the one its hash is of.
        """
        if not rows:
            return
        values = [_generation_values(row) for row in rows]
        with self._connect(write=True) as conn:
            conn.execute(generation_log.insert(), values)

    def generations(self, model_id: str | None = None) -> list[GenerationRecord]:
        """The logged generations, oldest first (``model_id``: only that model's)."""
        query = select(generation_log).order_by(generation_log.c.created_at)
        if model_id is not None:
            query = query.where(generation_log.c.model_id == model_id)
        with self._connect() as conn:
            return [_generation_record(row) for row in conn.execute(query)]

    def count_generations(self) -> int:
        """How many generations the log holds."""
        with self._connect() as conn:
            return int(conn.execute(select(func.count()).select_from(generation_log)).scalar_one())

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
        with self._connect(write=True) as conn:
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
        query = (
            select(prediction_log, feedback.c.true_label)
            .join(feedback, feedback.c.prediction_id == prediction_log.c.prediction_id)
            .where(feedback.c.id.in_(_latest_feedback_ids()))
            .order_by(feedback.c.created_at, feedback.c.id)
        )
        if since is not None:
            query = query.where(feedback.c.created_at >= since)
        with self._connect() as conn:
            return [(_prediction_record(row), str(row.true_label)) for row in conn.execute(query)]

    def feedback_examples(self, model_id: str | None = None) -> list[FeedbackExample]:
        """Labelled predictions with their kept inputs, oldest feedback first (for retraining).

        One per prediction, with its latest feedback (the rule of :meth:`feedback_rows`).
        Predictions logged without ``--keep-inputs`` are included with ``masked_text`` None, so
        a caller can say how many labels it could not use. ``model_id``: only that model's.
        """
        p, f, i = prediction_log.c, feedback.c, prediction_inputs.c
        query = (
            select(
                p.prediction_id,
                p.model_id,
                p.label,
                p.group,
                p.created_at.label("prediction_created_at"),
                f.true_label,
                f.created_at.label("feedback_created_at"),
                i.masked_text,
                i.masked_pair,
            )
            .select_from(
                prediction_log.join(feedback, f.prediction_id == p.prediction_id).outerjoin(
                    prediction_inputs, i.prediction_id == p.prediction_id
                )
            )
            .where(f.id.in_(_latest_feedback_ids()))
            .order_by(f.created_at, f.id)
        )
        if model_id is not None:
            query = query.where(p.model_id == model_id)
        with self._connect() as conn:
            return [_feedback_example(row) for row in conn.execute(query)]

    def feedback_model_ids(self) -> dict[str, int]:
        """Each model id with feedback -> how many of its predictions have feedback (sorted by
        id), so a caller asking for another model can say which ones this store can offer."""
        p, f = prediction_log.c, feedback.c
        query = (
            select(p.model_id, func.count(func.distinct(f.prediction_id)))
            .select_from(prediction_log.join(feedback, f.prediction_id == p.prediction_id))
            .group_by(p.model_id)
            .order_by(p.model_id)
        )
        with self._connect() as conn:
            return {str(model): int(n) for model, n in conn.execute(query)}

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
        with self._connect(write=True) as conn:
            result = conn.execute(alerts_table.insert().values(**values))
            alert_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        return AlertRecord(id=alert_id, **values)

    def alerts(self, limit: int = 100, *, model_id: str | None = None) -> list[AlertRecord]:
        """The newest ``limit`` alerts (of ``model_id``'s monitor, when given), newest first."""
        query = (
            select(alerts_table)
            .order_by(alerts_table.c.created_at.desc(), alerts_table.c.id.desc())
            .limit(max(0, int(limit)))
        )
        if model_id is not None:
            query = query.where(alerts_table.c.model_id == model_id)
        with self._connect() as conn:
            return [_alert_record(row) for row in conn.execute(query)]

    def raise_alert(
        self,
        model_id: str,
        metric: str,
        value: float | None,
        threshold: float | None,
        message: str,
        created_at: datetime,
    ) -> AlertRecord | None:
        """Make ``metric`` an active alert of ``model_id``'s monitor; None if it already is one.

        Every worker that sees the metric cross its limit tries; the unique index on
        (model_id, active_metric) lets exactly one INSERT succeed, so the alert is raised (and
        logged by its raiser) once however many processes check the shared window.
        """
        values: dict[str, Any] = {
            "created_at": created_at,
            "metric": str(metric)[:255],
            "value": _finite_or_none(value),
            "threshold": _finite_or_none(threshold),
            "message": str(message),
            "model_id": model_id,
            "active_metric": str(metric)[:255],
        }
        try:
            with self._connect(write=True) as conn:
                row = conn.execute(alerts_table.insert().values(**values).returning(alerts_table))
                return _alert_record(row.one())
        except IntegrityError:
            return None

    def clear_alert(self, model_id: str, metric: str, at: datetime) -> AlertRecord | None:
        """Clear ``model_id``'s active ``metric`` alert; the cleared alert, or None when it was
        not active (another worker cleared it first: only one UPDATE finds the row)."""
        query = (
            update(alerts_table)
            .where(alerts_table.c.model_id == model_id, alerts_table.c.active_metric == metric)
            .values(active_metric=None, cleared_at=at)
            .returning(alerts_table)
        )
        with self._connect(write=True) as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else _alert_record(row)

    def active_alerts(self, model_id: str) -> list[AlertRecord]:
        """``model_id``'s active alerts, oldest first."""
        query = (
            select(alerts_table)
            .where(alerts_table.c.model_id == model_id, alerts_table.c.active_metric.is_not(None))
            .order_by(alerts_table.c.created_at, alerts_table.c.id)
        )
        with self._connect() as conn:
            return [_alert_record(row) for row in conn.execute(query)]

    # -- rate limits ---------------------------------------------------------------------------

    def take_token(
        self, key_id: str, capacity: float, per_second: float, now: float | None = None
    ) -> tuple[bool, float]:
        """Take one token from ``key_id``'s bucket: (whether one was taken, tokens left).

        One atomic statement (:data:`_TAKE_TOKEN`): the bucket is refilled by the time since
        its last use, ``min(capacity, tokens + elapsed * per_second)``, and a token taken if
        at least one is there; a refused request takes nothing. Concurrent requests from any
        number of processes are serialised on the bucket's row (SQLite: the write lock that
        ``BEGIN IMMEDIATE`` takes; PostgreSQL: the row lock of ``INSERT .. ON CONFLICT DO
        UPDATE``), so together they never get more than the bucket holds.

        Time is the database's clock (``now`` overrides it, for tests): on PostgreSQL the
        server's, so hosts with skewed clocks share one time line; on SQLite the one host's
        wall clock. A clock that steps back refills nothing (elapsed is at least 0 and the
        bucket's time never moves back). A dropped connection is retried once on a fresh one,
        so the first request after the database returns is not refused for a dead connection.
        """
        params = {
            "key": key_id,
            "cap": float(capacity),
            "per_s": float(per_second),
            "now": None if now is None else float(now),
        }
        statement = _TAKE_TOKEN[self._relaxed.dialect.name]
        for attempt in (1, 2):
            try:
                with self._connect(write=True, relaxed=True) as conn:
                    granted, tokens = conn.execute(statement, params).one()
                return bool(granted), float(tokens)
            except StoreUnavailable as exc:
                cause = exc.__cause__
                if attempt == 2 or not getattr(cause, "connection_invalidated", False):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the monitor's windows -----------------------------------------------------------------

    def add_observations(
        self, model_id: str, rows: Sequence[ObservationRow], observed_at: float
    ) -> list[int]:
        """Record served predictions for ``model_id``'s monitor; their ids, in order.

        The ids come from one sequence shared by every process, so they say in which order
        observations arrived across workers (a check reads the newest ids) and let each worker
        tell when the shared count crosses a multiple of its check interval.
        """
        if not rows:
            return []
        values = [
            {
                "model_id": model_id,
                "prediction_id": row.prediction_id,
                "observed_at": float(observed_at),
                "length": int(row.length),
                "oov_rate": float(row.oov_rate),
                "positive_prob": float(row.positive_prob),
                "predicted_positive": bool(row.predicted_positive),
                "group": row.group,
                "embedding": bytes(row.embedding),
                "true_positive": None,
                "labelled_at": None,
            }
            for row in rows
        ]
        insert = monitor_observations.insert().returning(monitor_observations.c.id)
        with self._connect(write=True, relaxed=True) as conn:
            return [int(i) for i in conn.execute(insert, values).scalars()]

    def label_observation(
        self, model_id: str, prediction_id: str, true_positive: bool, at: float
    ) -> bool:
        """Attach a fed-back label to an observation; False when the monitor does not hold it
        (never observed for this model, or trimmed away). A later label replaces an earlier."""
        c = monitor_observations.c
        query = (
            update(monitor_observations)
            .where(c.model_id == model_id, c.prediction_id == prediction_id)
            .values(true_positive=bool(true_positive), labelled_at=float(at))
        )
        with self._connect(write=True, relaxed=True) as conn:
            return bool(conn.execute(query).rowcount)

    def observation_window(self, model_id: str, size: int) -> ObservationWindow:
        """The newest ``size`` observations and the ``size`` most recently labelled ones of
        ``model_id``, from every process, read in one snapshot (PostgreSQL: REPEATABLE READ)."""
        c = monitor_observations.c
        mine = c.model_id == model_id
        stats = select(
            func.count(), func.max(c.id), func.count(c.labelled_at), func.max(c.labelled_at)
        )
        columns = (c.prediction_id, c.length, c.oov_rate, c.positive_prob, c.predicted_positive)
        newest = (
            select(*columns, c.group, c.embedding).where(mine).order_by(c.id.desc()).limit(size)
        )
        labelled = (
            select(c.predicted_positive, c.true_positive, c.group)
            .where(mine, c.labelled_at.is_not(None))
            .order_by(c.labelled_at.desc(), c.id.desc())
            .limit(size)
        )
        pruned = select(monitor_totals.c.pruned).where(monitor_totals.c.model_id == model_id)
        with self._connect(relaxed=True) as conn:
            database.for_snapshot(conn)
            with conn.begin():
                count, last_id, n_labelled, last_label = conn.execute(stats.where(mine)).one()
                rows = conn.execute(newest).all()
                labels = conn.execute(labelled).all()
                trimmed = conn.execute(pruned).scalar_one_or_none() or 0
        total = int(count) + int(trimmed)
        return ObservationWindow(
            observations=[_observation_row(row) for row in reversed(rows)],
            labelled=[
                LabelRow(bool(r.predicted_positive), bool(r.true_positive), r.group)
                for r in reversed(labels)
            ],
            total=total,
            retained=int(count),
            version=(total, int(last_id or 0), int(n_labelled), float(last_label or 0.0)),
        )

    def trim_observations(self, model_id: str, keep: int) -> int:
        """Delete all but ``model_id``'s newest ``keep`` observations; how many went.

        Older observations can no longer be in a window or receive feedback the monitor uses;
        their number is added to the model's total so the count of observations stays whole.
        """
        c = monitor_observations.c
        mine = c.model_id == model_id
        cut = select(c.id).where(mine).order_by(c.id.desc()).offset(max(0, keep)).limit(1)
        with self._connect(write=True, relaxed=True) as conn:
            last_dropped = conn.execute(cut).scalar_one_or_none()
            if last_dropped is None:
                return 0
            gone = int(
                conn.execute(
                    delete(monitor_observations).where(mine, c.id <= last_dropped)
                ).rowcount
            )
            if gone:
                conn.execute(_add_pruned(conn.dialect.name, model_id, gone))
        return gone


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


def _input_values(
    rows: Sequence[PredictionRecord], inputs: Sequence[MaskedInput]
) -> list[dict[str, Any]]:
    if len(inputs) != len(rows):
        raise ValueError(f"{len(inputs)} kept inputs for {len(rows)} predictions")
    values = []
    for row, kept in zip(rows, inputs, strict=True):
        if hash_masked_text(kept.masked_text) != row.input_sha256:
            raise ValueError(
                f"the kept input of prediction {row.prediction_id} is not the masked text its "
                "input_sha256 hashes"
            )
        values.append(
            {
                "prediction_id": row.prediction_id,
                "masked_text": kept.masked_text,
                "masked_pair": kept.masked_pair,
            }
        )
    return values


def _generation_values(row: GenerationRecord) -> dict[str, Any]:
    if not _HEX32.fullmatch(row.generation_id):
        raise ValueError("generation_id must be 32 lowercase hex characters (uuid4().hex)")
    for name, digest, kept in (
        ("prompt", row.prompt_sha256, row.masked_prompt),
        ("response", row.response_sha256, row.masked_response),
    ):
        if not _HEX64.fullmatch(digest):
            raise ValueError(
                f"{name}_sha256 must be the SHA-256 hex digest of the masked {name} "
                "(hash_masked_text), not the text itself"
            )
        if kept is not None and hash_masked_text(kept) != digest:
            raise ValueError(
                f"the kept {name} of generation {row.generation_id} is not the masked text its "
                f"{name}_sha256 hashes"
            )
    return {
        "generation_id": row.generation_id,
        "created_at": row.created_at,
        "key_id": row.key_id,
        "model_id": row.model_id,
        "prompt_sha256": row.prompt_sha256,
        "response_sha256": row.response_sha256,
        "settings": json.dumps(row.settings, ensure_ascii=False, sort_keys=True),
        "latency_ms": float(row.latency_ms),
        "masked_prompt": row.masked_prompt,
        "masked_response": row.masked_response,
    }


def _generation_record(row: Row[Any]) -> GenerationRecord:
    return GenerationRecord(
        generation_id=str(row.generation_id),
        created_at=row.created_at,
        key_id=row.key_id,
        model_id=str(row.model_id),
        prompt_sha256=str(row.prompt_sha256),
        response_sha256=str(row.response_sha256),
        settings=dict(json.loads(row.settings)),
        latency_ms=float(row.latency_ms),
        masked_prompt=row.masked_prompt,
        masked_response=row.masked_response,
    )


def _latest_feedback_ids() -> ScalarSelect[Any]:
    """The id of each prediction's latest feedback: a later label supersedes an earlier one."""
    return (
        select(func.max(feedback.c.id).label("id"))
        .group_by(feedback.c.prediction_id)
        .scalar_subquery()
    )


def _feedback_example(row: Row[*tuple[Any, ...]]) -> FeedbackExample:
    return FeedbackExample(
        prediction_id=str(row.prediction_id),
        model_id=str(row.model_id),
        predicted_label=str(row.label),
        true_label=str(row.true_label),
        group=row.group,
        prediction_created_at=row.prediction_created_at,
        feedback_created_at=row.feedback_created_at,
        masked_text=row.masked_text,
        masked_pair=row.masked_pair,
    )


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


def _alert_record(row: Row[Any]) -> AlertRecord:
    return AlertRecord(
        id=int(row.id),
        created_at=row.created_at,
        metric=str(row.metric),
        value=row.value,
        threshold=row.threshold,
        message=str(row.message),
        model_id=row.model_id,
        cleared_at=row.cleared_at,
    )


def _observation_row(row: Row[Any]) -> ObservationRow:
    return ObservationRow(
        prediction_id=str(row.prediction_id),
        length=int(row.length),
        oov_rate=float(row.oov_rate),
        positive_prob=float(row.positive_prob),
        predicted_positive=bool(row.predicted_positive),
        group=row.group,
        embedding=bytes(row.embedding),
    )


# -- schema and connections ------------------------------------------------------------------


def _schema_current(conn: Connection) -> bool:
    """Whether every table exists with every column (so opening needs no write lock)."""
    found = inspect(conn)
    if not set(metadata.tables) <= set(found.get_table_names()):
        return False
    return set(_ADDED_ALERT_COLUMNS) <= {c["name"] for c in found.get_columns("alerts")}


def _upgrade_alerts(conn: Connection) -> None:
    """Give an alerts table from before shared monitoring its new columns and unique index.

    ``create_all`` creates missing tables but never alters an existing one; the added columns
    are nullable, so old rows stay valid (one-off alerts with no model and no active state).
    """
    have = {c["name"] for c in inspect(conn).get_columns("alerts")}
    missing = [name for name in _ADDED_ALERT_COLUMNS if name not in have]
    for name in missing:
        kind = alerts_table.c[name].type.compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE alerts ADD COLUMN {name} {kind}"))
    if missing:
        for index in alerts_table.indexes:
            index.create(conn, checkfirst=True)


_RELAXED_COMMIT = {
    "sqlite": "PRAGMA synchronous = NORMAL",
    "postgresql": "SET synchronous_commit TO off",
}


def _relaxer(dialect: str) -> Callable[[Any, Any], None]:
    """A connect hook that makes a pool commit without waiting for the disk (module docstring).

    It runs after :mod:`ethos.database`'s own hook. SQLite in WAL mode with NORMAL stays
    consistent after a crash and may lose only the last commits; PostgreSQL's asynchronous
    commit likewise (at most about three ``wal_writer_delay``s, 0.6 s by default).
    """

    def relax(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(_RELAXED_COMMIT[dialect])
        finally:
            cursor.close()
        if dialect == "postgresql":
            dbapi_connection.commit()  # a SET in a transaction that is rolled back is undone

    return relax


def _take_token_sql(least: str, greatest: str, now: str, true: str) -> TextClause:
    """The token-bucket statement in one dialect's words (``least``/``greatest`` are SQLite's
    two-argument ``min``/``max``); the refill is written out three times because SET expressions
    see the old row and cannot name each other."""
    refill = (
        f"{least}(:cap, rate_buckets.tokens + "
        f"{greatest}(0.0, excluded.updated_at - rate_buckets.updated_at) * :per_s)"
    )
    return text(
        "INSERT INTO rate_buckets (key_id, tokens, updated_at, granted) "
        f"VALUES (:key, :cap - 1, {now}, {true}) "
        "ON CONFLICT (key_id) DO UPDATE SET "
        f"tokens = {refill} - CASE WHEN {refill} >= 1 THEN 1 ELSE 0 END, "
        f"granted = {refill} >= 1, "
        f"updated_at = {greatest}(rate_buckets.updated_at, excluded.updated_at) "
        "RETURNING granted, tokens"
    )


_TAKE_TOKEN = {
    "sqlite": _take_token_sql(
        "min", "max", "coalesce(:now, (julianday('now') - 2440587.5) * 86400.0)", "1"
    ),
    "postgresql": _take_token_sql(
        "LEAST",
        "GREATEST",
        "coalesce(CAST(:now AS double precision), "
        "CAST(extract(epoch FROM statement_timestamp()) AS double precision))",
        "true",
    ),
}
"""Take a token in one statement. ``now`` is computed once, in VALUES, and read back as
``excluded.updated_at``: SQLite's ``'now'`` is fixed for a statement, and PostgreSQL's
``statement_timestamp()`` is the statement's start (``clock_timestamp()`` would move between
uses). A new key's bucket starts full, less the token this request takes."""


def _add_pruned(dialect: str, model_id: str, count: int) -> Any:
    """Add ``count`` to a model's trimmed-observation total (an upsert on either backend)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(monitor_totals).values(model_id=model_id, pruned=count)
    return statement.on_conflict_do_update(
        index_elements=[monitor_totals.c.model_id],
        set_={"pruned": monitor_totals.c.pruned + count},
    )
