"""Shared by the USB sync tests: a kiosk (config, data, keys), an office key pair, and the office's reading."""
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from kiosk import bundle as B
from kiosk import syncdoc as D
from kiosk.store import Store
from kiosk.sync import export
from kiosk.syncinbox import StoreForgetter, import_inbox
from kiosk.synckeys import SyncKeys, load_kiosk_key, office_key_file_in_use, read_office_key, write_office_key

T0 = datetime(2026, 11, 27, 8, 0)
CONSENT = "Tôi đồng ý cho lưu đặc trưng khuôn mặt (v1)"

CONFIG = """# a test kiosk
[kiosk]
id = "k-01"
office = "UBND Phường Một"   # the office's name on screen
data_dir = "{data}"
simulate = true

[[categories]]
key = "ho-tich"
prefix = "HT"
name_vi = "Hộ tịch"
name_en = "Civil status"
pin = 5

[[categories]]
key = "dat-dai"
prefix = "DD"
name_vi = "Đất đai"
name_en = "Land"
pin = 6

[sync]
key_file = "{keys}/kiosk-sync.key"
office_key_file = "{keys}/office-sync.pub"
"""


@dataclass
class Kiosk:
    root: Path
    data: Path
    config: Path
    keys_dir: Path
    office: B.OfficeKeys
    kiosk_id: str = "k-01"

    @property
    def key_file(self) -> Path:
        return self.keys_dir / "kiosk-sync.key"

    @property
    def office_file(self) -> Path:
        return self.keys_dir / "office-sync.pub"

    def keys(self) -> SyncKeys:
        return SyncKeys(load_kiosk_key(self.key_file, create=True),
                        read_office_key(office_key_file_in_use(self.office_file, self.data)))

    def store(self) -> Store:
        return Store.open(self.data, kiosk_id=self.kiosk_id, clock=lambda: T0)

    def issue(self, n, *, start=T0, citizen=None, category=("ho-tich", "HT")):
        with self.store() as s:
            return [s.issue_ticket(*category, citizen_id=citizen, now=start + timedelta(minutes=i))
                    for i in range(n)]

    def export(self, stick, **kw):
        return export(stick, data_dir=self.data, kiosk_id=self.kiosk_id, keys=self.keys(),
                      now=kw.pop("now", T0), **kw)

    def data_fingerprint(self) -> dict[str, str]:
        """Every file of the kiosk's data (not its sync bookkeeping) with its hash: 'nothing changed'."""
        return {str(p.relative_to(self.data)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.data.rglob("*"))
                if p.is_file() and p.relative_to(self.data).parts[0] != "sync"}


def make_kiosk(tmp_path: Path) -> Kiosk:
    keys_dir = tmp_path / "etc"
    keys_dir.mkdir(parents=True)
    data = tmp_path / "data"
    config = keys_dir / "kiosk.toml"
    config.write_text(CONFIG.format(data=data, keys=keys_dir), encoding="utf-8")
    office = B.OfficeKeys.generate()
    k = Kiosk(tmp_path, data, config, keys_dir, office)
    write_office_key(k.office_file, office.public())
    load_kiosk_key(k.key_file, create=True)
    return k


@pytest.fixture
def k(tmp_path):
    """A fresh kiosk for one test (the sync tests import this fixture)."""
    return make_kiosk(tmp_path)


@pytest.fixture
def stick(tmp_path):
    """An empty stick folder."""
    s = tmp_path / "stick"
    s.mkdir()
    return s


def run_import(k: Kiosk, stick: Path, *, secret: bytes | None = None, wait: float = 0.3):
    """``kiosk import`` from ``stick`` into kiosk ``k``: deletions through the store when nobody holds it, else
    handed over to a running kiosk for at most ``wait`` seconds."""
    forgetter = StoreForgetter(k.data, kiosk_id="k-01", day_start_hour=0, now=T0, secret=secret, wait=wait)
    try:
        return import_inbox(stick, data_dir=k.data, kiosk_id="k-01", office_key_file=office_key_file_in_use(k.office_file, k.data),
                            config_path=k.config, forgetter=forgetter)
    finally:
        forgetter.close()


def enrol(k: Kiosk, count: int = 1, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    with k.store() as s:
        return [s.enrol(rng.random((2, 128), dtype=np.float32), now=T0, consent_text=CONSENT).id
                for _ in range(count)]


class Office:
    """What the office tool does with a stick, as far as these tests need: verify, chain, ingest once, ack."""

    def __init__(self, k: Kiosk):
        self.k = k
        self.visits: dict[str, dict] = {}
        self.consents: dict[str, dict] = {}
        self.tombstones: dict[str, dict] = {}
        self.audit: list[dict] = []
        self.chain: list[str] = []          # sha256 of bundles 1..n, ingested in order

    def ingest(self, stick: Path) -> list[int]:
        folder = stick / B.SYNC_DIR / self.k.kiosk_id
        registered = {self.k.kiosk_id: self.k.keys().kiosk.verify_key}
        done = []
        for path in sorted(folder.glob("*.bundle")):
            b = B.read_bundle(path, office_key=self.k.office, kiosk_verify_keys=registered)
            seq = b.header.sequence
            if seq <= len(self.chain):
                assert self.chain[seq - 1] == b.header.sha256, "fork"
                continue                                   # ingested once
            assert seq == len(self.chain) + 1, f"gap before {seq}"
            assert b.header.prev == (self.chain[-1] if self.chain else None)
            for v in b.visits:
                self.visits[v["id"]] = v
            self.consents.update((c["consent_id"], c) for c in b.parts["consents"])
            self.tombstones.update((t["citizen"], t) for t in b.parts["tombstones"])
            self.audit += b.parts["audit"]
            self.chain.append(b.header.sha256)
            done.append(seq)
        return done

    def ack(self, stick: Path) -> None:
        data = D.make_ack(kiosk_id=self.k.kiosk_id, sequence=len(self.chain), bundle_sha256=self.chain[-1],
                          created=T0.isoformat(), key=self.k.office.sign)
        D.write_ack(stick, data, self.k.kiosk_id)

    def signed(self, stick: Path, name: str, body: dict, key=None) -> Path:
        inbox = stick / B.SYNC_DIR / B.INBOX_DIR
        inbox.mkdir(parents=True, exist_ok=True)
        body = {"kiosk": "*", "created": T0.isoformat(), **body}
        (inbox / name).write_bytes(D.sign_document(body, key or self.k.office.sign))
        return inbox / name


def stored_visits(k: Kiosk) -> dict[str, dict]:
    with Store.open_readonly(k.data) as s:
        return {v.id: v.to_json() for v in s.visits()}
