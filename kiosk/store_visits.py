"""Visits of the store: the hot file keeps today's and yesterday's, older ones move to append-only month files."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Iterator

from kiosk.storage import RecordLog, fsync_dir
from kiosk.store_base import ARCHIVE_DIR, StoreBase, StoreError, _saving


@dataclass(frozen=True)
class Visit:
    id: str  # random hex, encoded in the ticket's QR code
    ticket: str  # "HT-001"
    number: int
    category: str  # category key, "ho-tich"
    issued_at: datetime  # local, naive
    service_day: date  # the day the number belongs to (counters reset at the configured hour)
    citizen_id: str | None
    kiosk_id: str
    printed: bool | None  # None until the printer answered
    identified_by: str | None = None  # "card" | "face": how the citizen was known (None without a citizen)

    def to_json(self) -> dict[str, Any]:
        """The technician's / export view (`kiosk visits --json`)."""
        return {"ticket": self.ticket, "category": self.category, "time": self.issued_at.isoformat(),
                "citizen": self.citizen_id, "printed": self.printed, "id": self.id, "kiosk": self.kiosk_id,
                "number": self.number, "service_day": self.service_day.isoformat(),
                "identified_by": self.identified_by}


def _visit_from_doc(doc: dict) -> Visit:
    return Visit(id=doc["id"], ticket=doc["ticket"], number=doc["number"], category=doc["category"],
                 issued_at=datetime.fromisoformat(doc["issued_at"]),
                 service_day=date.fromisoformat(doc["service_day"]), citizen_id=doc.get("citizen"),
                 kiosk_id=doc.get("kiosk", ""), printed=doc.get("printed"),
                 identified_by=doc.get("by") if doc.get("citizen") else None)


class VisitArchive(StoreBase):
    """The visit part of :class:`~kiosk.store.Store`: day roll-over to the month files, printer answers, reading."""

    def _roll_over(self, day: date) -> None:
        """A new service day: move visits older than yesterday to the month files, drop their counters.

        Visits dated after ``day`` (numbered under a clock that ran ahead, see :meth:`accept_clock`) go too,
        but their counters stay: when that day really comes, its numbering continues above them.
        """
        keep_from, keep_to = (day - timedelta(days=1)).isoformat(), day.isoformat()
        state = self._hot_storage.peek()
        old = [(int(k), doc) for k, doc in state.get("visits", {}).items()
               if not keep_from <= doc["service_day"] <= keep_to]
        old_counters = [int(k) for k, doc in state.get("counters", {}).items() if doc["day"] < keep_from]
        if old:
            by_month: dict[str, list[dict]] = {}
            for _, doc in old:
                by_month.setdefault(doc["service_day"][:7], []).append(doc)
            archive = self.data_dir / ARCHIVE_DIR
            if not archive.is_dir():
                archive.mkdir()
                fsync_dir(self.data_dir)
            for month, docs in sorted(by_month.items()):
                with self._archive_lock:
                    out = RecordLog(archive / f"{month}.jsonl", checksum=True)
                    try:
                        out.append(docs)  # durable before the hot copies go (a crash in between: duplicates,
                    finally:             # which readers drop by visit id)
                        out.close()
        if old or old_counters:
            self._hot_storage.apply(dels={"visits": [str(k) for k, _ in old],
                                          "counters": [str(k) for k in old_counters]})
            for _, doc in old:
                self._visit_docs.pop(doc["id"], None)
            self._counters = {k: v for k, v in self._counters.items() if k[0] >= keep_from}
            self._floors = {k: v for k, v in self._floors.items() if k[0] >= keep_from}

    def mark_printed(self, visit_id: str, ok: bool) -> None:
        """Record the printer's answer for a visit."""
        self._writable()
        doc_id = self._visit_docs.get(visit_id)
        if doc_id is not None:
            doc = self._hot_storage.peek()["visits"][str(doc_id)]
            with _saving("printer answer"):
                self._hot_storage.apply({"visits": {str(doc_id): {**doc, "printed": bool(ok)}}})
            return
        for month_file in sorted((self.data_dir / ARCHIVE_DIR).glob("*.jsonl"), reverse=True):
            records, _ = RecordLog.load(month_file, repair=False)
            if any(r.get("id") == visit_id and "patch" not in r for r in records):
                with self._archive_lock:
                    out = RecordLog(month_file, checksum=True)
                    try:
                        with _saving("printer answer"):
                            out.append([{"patch": visit_id, "printed": bool(ok)}])
                    finally:
                        out.close()
                return
        raise StoreError(f"unknown visit {visit_id} in {self.data_dir}")

    def visits(self, since: date | None = None) -> Iterator[Visit]:
        """Stored visits of service days from ``since`` on (all when None), oldest month first."""
        self._open_check()
        since_iso = since.isoformat() if since else ""
        hot = self._hot_storage.peek().get("visits", {})
        in_hot = {doc["id"] for doc in hot.values()}  # a crash while archiving leaves copies in both
        for month_file in sorted((self.data_dir / ARCHIVE_DIR).glob("*.jsonl")):
            if since and month_file.stem < since_iso[:7]:
                continue
            records, _ = RecordLog.load(month_file, repair=False)
            docs: dict[str, dict] = {}
            for r in records:
                if "patch" in r:
                    if r["patch"] in docs:
                        docs[r["patch"]] = {**docs[r["patch"]], "printed": r["printed"]}
                else:
                    docs[r["id"]] = r
            for doc in docs.values():
                if doc["service_day"] >= since_iso and doc["id"] not in in_hot:
                    yield _visit_from_doc(doc)
        for k in sorted(hot, key=int):
            if hot[k]["service_day"] >= since_iso:
                yield _visit_from_doc(hot[k])
