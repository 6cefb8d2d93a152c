"""The store-file family of benchmarks/fuzz.py: every file of a data folder x {emptied, cut at random, byte
flipped, replaced by garbage, replaced by an older copy}, then the kiosk's own opening (store and card records).

A case is ``clear`` when opening reported something (a staff notice: ``Store.problems`` / the card records'
problems), ``accepted`` when nothing was reported and nothing acknowledged is missing, ``silent`` when an
acknowledged record (citizen, face template, visit, card record, audit entry) is gone with no report, and
``unkept`` when a loss was reported but no damaged copy was kept beside the file.
"""
from __future__ import annotations

import collections
import random
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import numpy as np

from kiosk.datakey import DataKey
from kiosk.identity import CardBook
from kiosk.storage import RecordLog
from kiosk.store import Store

KINDS = ("emptied", "cut", "flipped", "garbage", "older")
KEY = DataKey(bytes(range(32)))
SECRET = b"fuzz-office-secret-0123456789abc"
DAYS = [datetime(2026, 10, 20, 9), datetime(2026, 10, 21, 9), datetime(2026, 11, 2, 9), datetime(2026, 11, 3, 9),
        datetime(2026, 11, 29, 9), datetime(2026, 11, 30, 9)]
END = datetime(2026, 11, 30, 16)
KEPT_MARKS = (".corrupt-", ".torn-", ".orphans-")


class Truth:
    """What the kiosk acknowledged before the damage: every one of these must still be there, or be reported."""

    def __init__(self, store: Store, book: CardBook, citizens: list[str]) -> None:
        self.citizens = set(citizens)
        self.templates = len(store.templates()[0])
        self.visits = {v.id for v in store.visits()}
        self.cards = len(book.records())
        self.audit = len(store.audit_records())


def _open(folder: Path, now: datetime) -> tuple[Store, CardBook]:
    store = Store.open(folder, kiosk_id="k-01", clock=lambda: now, key=KEY)
    try:
        return store, CardBook.open(folder, secret=SECRET, key=KEY)
    except BaseException:
        store.close()
        raise


def build(root: Path) -> tuple[Path, Path, Truth, list[str]]:
    """A data folder with 6 citizens (18 templates), 5 card records, visits on six days over two months; a copy
    of it as it was after the fourth day (the "older copy": every file changed or appeared since); what was
    acknowledged; the files to damage."""
    full, old = root / "full", root / "old"
    rng = np.random.default_rng(15)
    citizens: list[str] = []
    october: list[str] = []
    for d, day in enumerate(DAYS):
        store, book = _open(full, day)
        try:
            for m in range(5):
                cid = None
                if d < len(DAYS) - 1 or m < 2:
                    if len(citizens) < 7 and m == 0:
                        c = store.enrol(rng.random((3, 128), dtype=np.float32), now=day, consent_text="Đồng ý")
                        citizens.append(c.id)
                    cid = citizens[m % len(citizens)] if citizens else None
                if m == 1 and d != 3:
                    book.link(book.key(f"0010{d:08d}"), {"name": "Nguyễn Văn A"}, now=day)
                visit = store.issue_ticket("ho-tich" if m % 2 else "dat-dai", "HT" if m % 2 else "DD",
                                           citizen_id=cid, now=day + timedelta(minutes=m))
                store.mark_printed(visit.id, True)
                if day.month == 10:
                    october.append(visit.id)
            if d == 4:                # a printer answer for an archived visit: the month file grows after the copy
                store.mark_printed(october[0], False)
            if d == 3:
                shutil.copytree(full, old)
        finally:
            book.close()
            store.close()
    store, book = _open(full, END)
    try:
        truth = Truth(store, book, citizens)
    finally:
        book.close()
        store.close()
    shard = f"citizens/{int(citizens[-1][:2], 16) % 64:02x}"     # enrolled after the older copy was taken
    files = ["templates.bin", "templates.sum", f"{shard}.jsonl", f"{shard}.count", "visits/2026-10.jsonl",
             "visits/2026-10.sum", "visits/2026-11.jsonl", "visits/2026-11.sum", "hot.jsonl", "numbers.bin",
             "identity.jsonl", "identity.count", "audit.jsonl", "audit.head"]
    return full, old, truth, [f for f in files if (full / f).exists()]


def damage(path: Path, older: Path, kind: str, rng: random.Random) -> None:
    data = path.read_bytes()
    if kind == "emptied":
        path.write_bytes(b"")
    elif kind == "cut":
        path.write_bytes(data[:rng.randrange(len(data))] if data else b"")
    elif kind == "flipped" and data:
        i = rng.randrange(len(data))
        path.write_bytes(data[:i] + bytes([data[i] ^ rng.randrange(1, 256)]) + data[i + 1:])
    elif kind == "garbage":
        path.write_bytes(rng.randbytes(rng.choice([len(data), rng.randrange(1, 2 * len(data) + 2)])))
    elif kind == "older":
        if older.exists():
            shutil.copyfile(older, path)
        else:
            path.unlink()        # not there yet in the older folder


def check(folder: Path, truth: Truth, damaged: tuple[Path, bytes]) -> str:
    """Open the damaged folder as the kiosk does; the outcome of the case. The damaged bytes count as kept when
    a copy was set aside or the file still begins with them (the audit log is never rewritten)."""
    store, book = _open(folder, END)
    try:
        problems = list(store.problems) + list(book.problems)
        lost = len(truth.citizens - {c for c in truth.citizens if store.citizen(c) is not None})
        lost += max(0, truth.templates - len(store.templates()[0]))
        lost += len(truth.visits - {v.id for v in store.visits()})
        lost += max(0, truth.cards - len(book.records()))
        lost += max(0, truth.audit - (len(RecordLog.load(folder / "audit.jsonl", repair=False)[0]) - 1))
    finally:
        book.close()
        store.close()
    _open(folder, END + timedelta(minutes=1))[0].close()      # and it opens again afterwards
    if lost and not problems:
        return "silent"
    path, data = damaged
    in_place = path.exists() and path.read_bytes().startswith(data)
    if lost and not in_place and not any(mark in p.name for p in folder.rglob("*") for mark in KEPT_MARKS):
        return "unkept"
    return "clear" if problems else "accepted"


def store_family(n: int, rng: random.Random, work: Path, timeout: float,
                 run_case: Callable[..., None], tally: object) -> dict[tuple[str, str], collections.Counter]:
    """``n`` cases cycling over every file x every kind; the tally per (file, kind) as well as overall."""
    full, old, truth, files = build(work)
    per: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
    for i in range(n):
        name, kind = files[i % len(files)], KINDS[(i // len(files)) % len(KINDS)]
        folder = work / f"case-{i}"

        def case(name: str = name, kind: str = kind, folder: Path = folder) -> str:
            shutil.copytree(full, folder)
            damage(folder / name, old / name, kind, rng)
            path = folder / name
            outcome = check(folder, truth, (path, path.read_bytes() if path.exists() else b""))
            per[(name, kind)][outcome] += 1
            return outcome

        case.label = f"{name} {kind}"  # type: ignore[attr-defined]
        counts: collections.Counter = tally.counts  # type: ignore[attr-defined]
        before, done = collections.Counter(counts), sum(per[(name, kind)].values())
        run_case(tally, case, timeout)
        if sum(per[(name, kind)].values()) == done:           # it escaped: a traceback or a hang
            per[(name, kind)].update(counts - before)
        shutil.rmtree(folder, ignore_errors=True)
    return per
