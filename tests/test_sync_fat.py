"""A real FAT32 stick: an image made by mkfs.vfat, written and read through mtools (this kernel cannot mount vfat).

The kiosk exports to a folder, mcopy puts the folder on the image, and everything is read back from the image
with mcopy: the office verifies and ingests it, its acknowledgement travels back the same way.
"""
import shutil
import subprocess

import pytest
from synckit import T0, Office, make_kiosk, stored_visits

MKFS = shutil.which("mkfs.vfat") or shutil.which("mkfs.vfat", path="/usr/sbin:/sbin")
pytestmark = pytest.mark.skipif(
    not (MKFS and shutil.which("mcopy") and shutil.which("mdir")),
    reason="mkfs.vfat / mtools not installed (Debian: apt install dosfstools mtools; .ci/run installs them)")


def mtools(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def image(tmp_path):
    img = tmp_path / "stick.img"
    mtools(MKFS, "-F", "32", "-n", "KIOSKSTICK", "-C", str(img), str(40 * 1024))
    return img


def to_image(img, folder):
    mtools("mcopy", "-s", "-o", "-i", str(img), str(folder / "kiosk-sync"), "::/")


def from_image(img, folder):
    folder.mkdir()
    mtools("mcopy", "-s", "-n", "-i", str(img), "::/kiosk-sync", str(folder))
    return folder


def test_export_through_a_fat32_image(tmp_path, image):
    k = make_kiosk(tmp_path)
    k.issue(30)
    out = tmp_path / "export"
    out.mkdir()
    k.export(out)
    to_image(image, out)
    listing = mtools("mdir", "-i", str(image), "::/kiosk-sync/k-01")
    # the long name is there; the 8.3 alias FAT needs beside it is the mangled 000000~1.BUN
    assert "00000001.bundle" in listing and "000000~1 BUN" in listing

    back = from_image(image, tmp_path / "back")
    original = (out / "kiosk-sync" / "k-01" / "00000001.bundle").read_bytes()
    assert (back / "kiosk-sync" / "k-01" / "00000001.bundle").read_bytes() == original
    office = Office(k)
    assert office.ingest(back) == [1] and office.visits == stored_visits(k)

    office.ack(back)                                         # the office writes its ack on the stick...
    to_image(image, back)
    returned = from_image(image, tmp_path / "returned")      # ...and the stick comes back to the kiosk
    k.issue(1, start=T0.replace(hour=9))
    result = k.export(returned)
    assert result.acknowledged == 1 and result.written == [2] and result.already == []
    to_image(image, returned)
    assert "000000~2 BUN" in mtools("mdir", "-i", str(image), "::/kiosk-sync/k-01")
    final = from_image(image, tmp_path / "final")
    assert office.ingest(final) == [2] and office.visits == stored_visits(k)


def test_a_full_fat_stick_is_refused_by_mtools_and_the_kiosk_resends(tmp_path, image):
    """A stick with no room for the bundle: the copy fails; the kiosk still has the bundle for the next stick."""
    free_line = next(line for line in mtools("mdir", "-i", str(image), "::/").splitlines() if "bytes free" in line)
    free = int("".join(ch for ch in free_line if ch.isdigit()))
    junk = tmp_path / "junk.bin"
    with open(junk, "wb") as f:
        f.truncate(free - 2048)                             # leaves a few clusters free
    mtools("mcopy", "-i", str(image), str(junk), "::/junk.bin")
    k = make_kiosk(tmp_path)
    k.issue(300)
    out = tmp_path / "export"
    out.mkdir()
    k.export(out)
    bundle = out / "kiosk-sync" / "k-01" / "00000001.bundle"
    failed = subprocess.run(["mcopy", "-s", "-o", "-i", str(image), str(out / "kiosk-sync"), "::/"],
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "full" in (failed.stderr + failed.stdout).lower()
    again = tmp_path / "bigger"
    again.mkdir()
    assert k.export(again).written == [1]                   # not acknowledged: sent again, same bytes
    assert (again / "kiosk-sync" / "k-01" / "00000001.bundle").read_bytes() == bundle.read_bytes()
