"""Canonical JSON is a fixed point: what is stored reads back to the same bytes and hash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ethos.governance.ledger_canonical import canonical_json, check_json_value, entry_hash

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_json_survives_a_round_trip(payload: dict[str, Any]) -> None:
    check_json_value(payload, "payload")  # everything generated here is acceptable
    once = canonical_json(payload)
    again = canonical_json(json.loads(once))
    assert once == again
    fields = {
        "seq": 1,
        "kind": "run",
        "actor": "a",
        "run_id": None,
        "dataset_fingerprint": None,
        "config_hash": None,
        "model_hash": None,
        "audit_digest": None,
        "decision": None,
        "created_at": "2024-01-01T00:00:00.000000Z",
        "prev_hash": "0" * 64,
    }
    assert entry_hash({**fields, "payload": payload}) == entry_hash(
        {**fields, "payload": json.loads(once)}
    )
