"""Consent records, kept as long as the data they cover plus ``[privacy] records_extra_months`` (issue 10, item 2).

A live citizen's consent (its id, time and wording version) sits in their citizen record. When their face
templates go (a request, or the retention purge), :meth:`~kiosk.store.Store.forget_many` moves those three
fields, and nothing personal but the citizen id, into the deletion receipt, which
:meth:`~kiosk.store.Store.drop_receipts` removes ``records_extra_months`` after the deletion: so the consent
record outlives the templates by exactly that period, then goes. This module reads both places as one list.
"""
from __future__ import annotations

from typing import Any, Protocol


class ConsentSource(Protocol):
    def consents(self) -> list[dict[str, Any]]: ...
    def receipts(self) -> list[dict[str, Any]]: ...


def kept_consents(store: ConsentSource) -> list[dict[str, Any]]:
    """Every consent record still kept, oldest first: ``citizen``, ``consent_id``, ``at``, ``text_version`` and
    ``data_deleted`` (None while the templates are kept; the deletion's time once only the record is left)."""
    live = [{"citizen": c["citizen"], "consent_id": c["consent_id"], "at": c["at"], "text_version": c["text_version"],
             "data_deleted": None} for c in store.consents()]
    gone = [{"citizen": r["citizen"], "consent_id": r["consent_id"], "at": r["consent_at"],
             "text_version": r["consent_text"], "data_deleted": r["at"]}
            for r in store.receipts() if r.get("consent_id")]
    return sorted(live + gone, key=lambda c: c["at"])
