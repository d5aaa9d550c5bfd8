"""Canonical bytes, hashes and HMAC signatures of ledger entries.

The ledger's integrity rests on one rule: the same entry always serialises to the same bytes, on
every machine and every Python. Canonical JSON here means sorted keys, no whitespace, UTF-8 (not
``\\uXXXX`` escapes), and floats in Python's shortest round-trip ``repr`` (stable since 3.1);
NaN and infinities are refused because JSON cannot carry them. Only JSON's own types are
accepted, so nothing is silently converted (a tuple, a datetime, a numpy scalar would each read
back as something else and break the hash).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from collections.abc import Mapping
from typing import Any

from ethos.governance.ledger_errors import LedgerError

#: Bump when the hashed body changes shape; old entries keep verifying under their version.
FORMAT_VERSION = 1
#: The ``prev_hash`` of the first entry: there is nothing before it.
GENESIS_HASH = "0" * 64
#: Environment variable holding the HMAC-SHA256 key (any string; its UTF-8 bytes are the key).
HMAC_KEY_ENV = "ETHOS_LEDGER_HMAC_KEY"

#: The entry fields covered by the hash, in the order a human reads them.
HASHED_FIELDS = (
    "seq",
    "kind",
    "actor",
    "run_id",
    "dataset_fingerprint",
    "config_hash",
    "model_hash",
    "audit_digest",
    "decision",
    "created_at",
    "payload",
    "prev_hash",
)


def canonical_json(value: Any) -> bytes:
    """The one byte string for a JSON value: sorted keys, no spaces, UTF-8, shortest floats."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def check_json_value(value: Any, where: str) -> None:
    """Refuse anything that would not read back identically from canonical JSON.

    Raises LedgerError naming the offending path (``payload.dose[2]``) so a caller can fix it.
    """
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LedgerError(
                f"{where} is {value!r}, which JSON cannot represent",
                hint="record non-finite numbers as a string or leave the field out",
            )
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json_value(item, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise LedgerError(
                    f"{where} has a key {key!r} of type {type(key).__name__}",
                    hint="use string keys only (JSON objects have string keys)",
                )
            check_json_value(item, f"{where}.{key}")
        return
    raise LedgerError(
        f"{where} is a {type(value).__name__}, which is not a JSON type",
        hint="convert it to str, int, float, bool, None, list or dict before appending "
        "(e.g. datetime.isoformat(), float(x), list(t))",
    )


def entry_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The dictionary that is hashed and signed: the hashed fields plus the format version."""
    body = {name: fields[name] for name in HASHED_FIELDS}
    body["v"] = FORMAT_VERSION
    return body


def entry_hash(fields: Mapping[str, Any]) -> str:
    """sha256 (hex) of the entry's canonical JSON."""
    return hashlib.sha256(canonical_json(entry_body(fields))).hexdigest()


def head_body(seq: int, head_hash: str) -> bytes:
    """Bytes signed for the head row (shaped unlike an entry, so neither passes as the other)."""
    return canonical_json(
        {"ledger_head": {"seq": seq, "entry_hash": head_hash}, "v": FORMAT_VERSION}
    )


def sign(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 (hex) of ``message`` under ``key``."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_ok(key: bytes, message: bytes, signature: str | None) -> bool:
    """Constant-time check of a stored signature; a missing signature never passes."""
    return signature is not None and hmac.compare_digest(sign(key, message), signature)


def hmac_key_from(value: bytes | str | None) -> bytes | None:
    """The signing key: ``value`` when given, else ``$ETHOS_LEDGER_HMAC_KEY``, else no signing."""
    if value is None:
        value = os.environ.get(HMAC_KEY_ENV)
        if value is None:
            return None
        where = f"${HMAC_KEY_ENV}"
    else:
        where = "hmac_key"
    key = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if not key:
        raise LedgerError(
            f"{where} is set but empty",
            hint=f"unset {HMAC_KEY_ENV} to disable signing, or set it to a long random secret "
            "(e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)",
        )
    return key
