"""The bundle and signed-document formats (kiosk/bundle.py), shared with the office tool."""
import hashlib
import json
import os
import struct
import zlib

import pytest
from nacl.public import SealedBox
from nacl.signing import SigningKey

from kiosk import bundle as B
from kiosk import syncdoc as D

CREATED = "2026-12-01T08:00:00"


def visit(i, citizen="c0ffee" * 5 + "ab"):
    return {"id": f"{i:016x}", "ticket": f"HT-{i:03d}", "number": i, "category": "ho-tich",
            "time": f"2026-12-01T08:{i % 60:02d}:00", "service_day": "2026-12-01", "citizen": citizen,
            "printed": True, "kiosk": "k-01"}


CARD = {"citizen": "c0ffee" * 5 + "ab", "card": "ca7d" * 16, "created_at": CREATED, "last_seen": CREATED,
        "fields": {"name": "Trần Thị Thử", "birth_date": "1990-04-30", "sex": "Nữ", "address": "Số 9 Ngõ Giả"}}


@pytest.fixture
def keys():
    kiosk = SigningKey.generate()
    office = B.OfficeKeys.generate()
    return kiosk, office, {"k-01": kiosk.verify_key}


def make(keys, *, sequence=1, prev=None, parts=None, kiosk_id="k-01"):
    kiosk, office, _ = keys
    parts = parts if parts is not None else {
        "visits": [visit(i) for i in range(1, 6)],
        "consents": [{"citizen": "c0ffee" * 5 + "ab", "consent_id": "aa11bb22cc33dd44", "at": CREATED,
                      "text_version": "0123456789abcdef", "text": "Đồng ý lưu khuôn mặt"}],
        "tombstones": [{"citizen": "dead" * 8, "at": CREATED, "consent_id": "ee55ff66", "templates_deleted": 3}],
        "audit": [{"at": CREATED, "event": "open", "pid": 1}],
        "counters": [{"day": "2026-12-01", "category": "ho-tich", "visits": 5, "last": 5}],
        "cards": [CARD, {"citizen": "dead" * 8, "card": "5eed" * 16, "deleted": True}],
    }
    return B.make_bundle(kiosk_id=kiosk_id, sequence=sequence, prev=prev, created=CREATED, parts=parts,
                         signing_key=kiosk, office=office.public(), extra={"inbox_sequence": 0})


def test_round_trip_gives_every_part_back(keys):
    kiosk, office, registered = keys
    data = make(keys)
    b = B.open_bundle(data, office_key=office, kiosk_verify_keys=registered)
    assert b.header.kiosk == "k-01" and b.header.sequence == 1 and b.header.prev is None
    assert b.header.sha256 == hashlib.sha256(data).hexdigest()
    assert [v["ticket"] for v in b.visits] == [f"HT-{i:03d}" for i in range(1, 6)]
    assert b.parts["consents"][0]["text"] == "Đồng ý lưu khuôn mặt"
    assert b.parts["cards"] == [CARD, {"citizen": "dead" * 8, "card": "5eed" * 16, "deleted": True}]
    assert b.manifest["counts"] == {"visits": 5, "consents": 1, "tombstones": 1, "audit": 1, "counters": 1,
                                    "cards": 2, "ratings": 0}
    assert b.manifest["inbox_sequence"] == 0
    assert {p["name"] for p in b.manifest["parts"]} == set(B.PARTS)


def test_without_the_office_key_no_visit_name_or_citizen_is_in_the_bytes(keys):
    data = make(keys)
    secrets_ = [b"HT-001", b"ho-tich", b"c0ffee", b"dead" * 4, "Đồng ý".encode(), b"0000000000000001",
                b"aa11bb22", b"2026-12-01T08:01", b"visits"]
    # nor any card field, in its text or as UTF-16 (a card's name is Vietnamese), nor the card key
    for value in [*CARD["fields"].values(), "Trần", "Thử", "1990", "30/04/1990", "ca7d" * 4, "5eed" * 4,
                  "birth_date", "deleted"]:
        secrets_ += [value.encode(), value.encode("utf-16-le")]
    for s in secrets_:
        assert s not in data, s
    # nor hidden in a compressed stream: no zlib stream decodes anywhere in the file
    for i in range(len(data) - 2):
        if data[i] == 0x78:
            with pytest.raises(zlib.error):
                zlib.decompressobj().decompress(data[i:i + 200])
    # the plaintext header is only the routing information
    hlen = struct.unpack(">I", data[10:14])[0]
    assert set(json.loads(data[14:14 + hlen])) == {"kiosk", "sequence", "prev", "created", "signer",
                                                    "recipient", "payload_bytes"}


def test_every_single_flipped_byte_is_rejected(keys):
    kiosk, office, registered = keys
    data = make(keys, parts={"visits": [visit(1)]})
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x01
        with pytest.raises(B.BundleError):
            B.open_bundle(bytes(bad), office_key=office, kiosk_verify_keys=registered)
        with pytest.raises(B.BundleError):  # and the signature alone already catches it
            B.verify_bundle(bytes(bad), registered)


def test_unknown_kiosk_other_signer_other_office_are_refused(keys):
    kiosk, office, registered = keys
    data = make(keys)
    with pytest.raises(B.BundleError, match="not registered"):
        B.verify_bundle(data, {"other": kiosk.verify_key})
    with pytest.raises(B.BundleError, match="unknown key"):
        B.verify_bundle(data, {"k-01": SigningKey.generate().verify_key})
    with pytest.raises(B.BundleError, match="another office key"):
        B.open_bundle(data, office_key=B.OfficeKeys.generate(), kiosk_verify_keys=registered)


def test_a_bundle_resigned_by_another_registered_kiosk_is_refused(keys):
    """Signing the ciphertext alone is not enough: the manifest inside names the real sender."""
    kiosk, office, registered = keys
    data = make(keys)
    thief = SigningKey.generate()
    hlen = struct.unpack(">I", data[10:14])[0]
    header = json.loads(data[14:14 + hlen])
    header.update(kiosk="k-02", signer=thief.verify_key.encode().hex())
    hbytes = B.canonical_json(header)
    head = data[:8] + struct.pack(">HI", 1, len(hbytes)) + hbytes
    ciphertext = data[14 + hlen:-64]
    digest = hashlib.sha256(head + ciphertext).digest()
    forged = head + ciphertext + thief.sign(b"kiosk-sync bundle 1\0" + digest).signature
    both = {**registered, "k-02": thief.verify_key}
    assert B.verify_bundle(forged, both).kiosk == "k-02"          # the outer signature is fine...
    with pytest.raises(B.BundleError, match="disagree"):          # ...the encrypted manifest is not
        B.open_bundle(forged, office_key=office, kiosk_verify_keys=both)


def _sealed(keys, payload):
    """A validly signed and encrypted bundle around an arbitrary payload (a compromised kiosk's bytes)."""
    kiosk, office, _ = keys
    ciphertext = SealedBox(office.box.public_key).encrypt(payload)
    header = B.canonical_json({"kiosk": "k-01", "sequence": 1, "prev": None, "created": CREATED,
                               "signer": kiosk.verify_key.encode().hex(),
                               "recipient": office.box.public_key.encode().hex(), "payload_bytes": len(ciphertext)})
    head = B.BUNDLE_MAGIC + struct.pack(">HI", 1, len(header)) + header
    sig = kiosk.sign(b"kiosk-sync bundle 1\0" + hashlib.sha256(head + ciphertext).digest()).signature
    return head + ciphertext + sig


def _manifest_payload(parts):
    body, entries = b"", []
    for name, blob, raw, count in parts:
        entries.append({"name": name, "offset": len(body), "bytes": len(blob), "raw_bytes": raw, "records": count,
                        "sha256": hashlib.sha256(blob).hexdigest()})
        body += blob
    m = B.canonical_json({"format": 1, "kiosk": "k-01", "sequence": 1, "prev": None, "created": CREATED,
                          "parts": entries})
    return struct.pack(">I", len(m)) + m + body


def test_a_zlib_bomb_from_a_signed_kiosk_stops_at_the_limit(keys):
    _, office, registered = keys
    bomb = zlib.compress(b"\n" * (64 << 20), 9)            # 64 MiB of newlines in ~64 KB
    empty = zlib.compress(b"")
    parts = [("visits", bomb, 10, 0)] + [(n, empty, 0, 0) for n in B.PARTS[1:]]
    with pytest.raises(B.BundleError, match="unpacked size differs"):   # lies about its size: stops at 11 bytes
        B.open_bundle(_sealed(keys, _manifest_payload(parts)), office_key=office, kiosk_verify_keys=registered)
    parts[0] = ("visits", bomb, 64 << 20, 0)
    with pytest.raises(B.BundleError, match="above the limit"):
        B.open_bundle(_sealed(keys, _manifest_payload(parts)), office_key=office, kiosk_verify_keys=registered,
                      max_part_bytes=1 << 20)


def test_face_templates_are_not_a_part_and_unknown_parts_are_refused(keys):
    kiosk, office, registered = keys
    with pytest.raises(B.BundleError, match="face templates never leave"):
        make(keys, parts={"templates": [[0.1] * 128]})
    empty = zlib.compress(b"")
    parts = [(n, empty, 0, 0) for n in B.PARTS] + [("templates", empty, 0, 0)]
    with pytest.raises(B.BundleError, match="unknown part"):
        B.open_bundle(_sealed(keys, _manifest_payload(parts)), office_key=office, kiosk_verify_keys=registered)


def test_chain_positions_cut_off_and_padded_files(keys):
    kiosk, office, registered = keys
    with pytest.raises(B.BundleError, match="chain"):
        make(keys, sequence=2, prev=None)
    first = make(keys)
    second = make(keys, sequence=2, prev=hashlib.sha256(first).hexdigest())
    assert B.verify_bundle(second, registered).prev == hashlib.sha256(first).hexdigest()
    for bad in (second[:-1], second + b"\0", second[:20], b"", b"PK\x03\x04" + second[4:]):
        with pytest.raises(B.BundleError):
            B.verify_bundle(bad, registered)
    with pytest.raises(B.BundleError, match="limit"):
        B.verify_bundle(second, registered, max_bytes=len(second) - 1)
    v2 = bytearray(second)
    v2[8:10] = struct.pack(">H", 2)
    with pytest.raises(B.BundleError, match="format 2"):
        B.verify_bundle(bytes(v2), registered)


def test_read_bundle_refuses_links_and_big_files_before_reading(tmp_path, keys):
    kiosk, office, registered = keys
    data = make(keys)
    B.write_bundle(tmp_path / B.bundle_name(1), data)
    assert B.read_bundle(tmp_path / "00000001.bundle", office_key=office, kiosk_verify_keys=registered).visits
    assert not (tmp_path / "00000001.tmp").exists()
    (tmp_path / "link.bundle").symlink_to(tmp_path / "00000001.bundle")
    with pytest.raises(B.BundleError, match="symbolic link"):
        B.read_bundle(tmp_path / "link.bundle", office_key=office, kiosk_verify_keys=registered)
    with open(tmp_path / "huge.bundle", "wb") as f:
        f.truncate(5 << 30)                                 # sparse: 5 GiB announced, nothing on disk
    with pytest.raises(B.BundleError, match="refused unread"):
        B.read_bundle(tmp_path / "huge.bundle", office_key=office, kiosk_verify_keys=registered)
    os.mkfifo(tmp_path / "fifo.bundle")
    with pytest.raises(B.BundleError, match="not a regular file"):
        B.read_bundle(tmp_path / "fifo.bundle", office_key=office, kiosk_verify_keys=registered)


def test_signed_documents(keys):
    _, office, _ = keys
    body = {"kind": "delete", "kiosk": "*", "sequence": 3, "created": CREATED, "citizens": ["ab" * 16]}
    data = D.sign_document(body, office.sign)
    assert D.open_document(data, office.sign.verify_key) == body
    with pytest.raises(B.BundleError, match="unknown key"):
        D.open_document(data, SigningKey.generate().verify_key)
    for i in (8, 50, 110, len(data) - 1):                  # version, signature, body
        bad = bytearray(data)
        bad[i] ^= 0x20
        with pytest.raises(B.BundleError):
            D.open_document(bytes(bad), office.sign.verify_key)
    with pytest.raises(B.BundleError, match="unsigned"):
        D.open_document(json.dumps(body).encode(), office.sign.verify_key)
    raw = B.canonical_json({"kind": "format-disk", "kiosk": "*", "sequence": 1})
    forged = D.DOC_MAGIC + struct.pack(">H", 1) + office.sign.verify_key.encode() \
        + office.sign.sign(b"kiosk-sync document 1\0" + raw).signature + raw
    with pytest.raises(B.BundleError, match="malformed"):
        D.open_document(forged, office.sign.verify_key)
    ack = D.make_ack(kiosk_id="k-01", sequence=4, bundle_sha256="ab" * 32, created=CREATED, key=office.sign)
    assert D.open_document(ack, office.sign.verify_key)["sequence"] == 4


def test_office_public_key_text(keys):
    _, office, _ = keys
    text = office.public().to_text()
    assert text.startswith("kiosk-office-v1:") and len(text) == 16 + 128
    again = B.OfficePublicKey.from_text(text + "\n")
    assert again.sign == office.sign.verify_key and again.box == office.box.public_key
    assert B.OfficeKeys.from_bytes(office.to_bytes()).public().to_text() == text
    for bad in ("", "kiosk-office-v1:zz", text[:-1], text.replace("kiosk-office-v1:", "ssh-ed25519 ")):
        with pytest.raises(B.BundleError, match="not an office public key"):
            B.OfficePublicKey.from_text(bad)


def test_names_are_fat_safe():
    assert B.bundle_name(7) == "00000007.bundle" and B.bundle_temp_name(7) == "00000007.tmp"
    assert B.bundle_name(12345678) < B.bundle_name(99999999)
    with pytest.raises(B.BundleError):
        B.check_kiosk_id("../etc")
