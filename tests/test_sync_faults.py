"""Any stick, any fault: pulled out at every write, full, read-only, hostile. One line, nothing on the kiosk lost."""
import errno
import os
import stat
from datetime import timedelta

import pytest
from synckit import T0, Office, k, run_import, stick, stored_visits  # noqa: F401  (k, stick: fixtures)

from kiosk import stickfs
from kiosk.stickfs import OsOps
from kiosk.sync import SyncError
from kiosk.syncinbox import MAX_INBOX_ENTRIES


class PulledOut(OsOps):
    """The stick disappears at the n-th write, fsync, rename, open or mkdir (errno chosen by the test)."""

    def __init__(self, fail_at: int, err: int = errno.EIO):
        self.fail_at, self.err, self.calls = fail_at, err, 0

    def _tick(self, what):
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError(self.err, os.strerror(self.err), what)

    def open(self, name, flags, mode, dir_fd):
        self._tick(name)
        return super().open(name, flags, mode, dir_fd)

    def write(self, fd, data):
        self._tick("write")
        return super().write(fd, data)

    def fsync(self, fd):
        self._tick("fsync")
        super().fsync(fd)

    def rename(self, src, dst, dir_fd):
        self._tick(dst)
        super().rename(src, dst, dir_fd)

    def mkdir(self, name, dir_fd):
        self._tick(name)
        super().mkdir(name, dir_fd)


def test_pulled_out_at_every_step_of_an_export(k, tmp_path):
    """The n-th stick call of an export fails, for every n, each time on a fresh stick; then a clean export.

    Bundle 1 is waiting for its acknowledgement and new visits make bundle 2 in the first failing export, so
    every step is hit: both folders (mkdir, fsync), and for each bundle open, write, fsync, rename, fsync.
    """
    k.issue(2)
    (tmp_path / "scratch").mkdir()
    k.export(tmp_path / "scratch")                                # bundle 1, never acknowledged
    k.issue(2, start=T0 + timedelta(hours=1))
    failures, n = [], 0
    while True:
        n += 1
        stick = tmp_path / f"stick-{n}"
        stick.mkdir()
        before = k.data_fingerprint()
        try:
            k.export(stick, ops=PulledOut(n))
        except SyncError as exc:
            failures.append(str(exc))
            assert "\n" not in str(exc) and str(stick) in str(exc)
        else:
            break
        finally:
            assert k.data_fingerprint() == before                 # the kiosk's data: not a byte changed
        clean = k.export(stick)                                   # the next export resends what did not arrive
        assert sorted(clean.written + clean.already) == [1, 2]
        office = Office(k)
        assert office.ingest(stick) == [1, 2] and office.visits == stored_visits(k)
    assert n == 15 and len(failures) == 14                        # 2 x (mkdir, fsync) + 2 x 5 per bundle
    assert sum("input/output error" in f for f in failures) == 14
    assert sum("cannot create the folder" in f for f in failures) == 4
    assert Office(k).ingest(stick) == [1, 2]


@pytest.mark.parametrize("err,words", [(errno.ENOSPC, "the stick is full"),
                                       (errno.EROFS, "the stick is read-only")])
def test_full_and_read_only_sticks(k, stick, err, words):
    k.issue(3)
    before = k.data_fingerprint()
    for fail_at in (1, 3, 4):                                      # mkdir, open of the temp file, the write
        with pytest.raises(SyncError, match=words):
            k.export(stick, ops=PulledOut(fail_at, err))
    assert k.data_fingerprint() == before
    assert k.export(stick).written == [1]


def test_links_out_of_the_stick_are_never_followed(k, stick, tmp_path):
    k.issue(1)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    (stick / "kiosk-sync").symlink_to(outside)
    with pytest.raises(SyncError, match="expected a folder, found a symbolic link"):
        k.export(stick)
    (stick / "kiosk-sync").unlink()
    (stick / "kiosk-sync").mkdir()
    (stick / "kiosk-sync" / "k-01").symlink_to(outside)
    with pytest.raises(SyncError, match="symbolic link"):
        k.export(stick)
    (stick / "kiosk-sync" / "k-01").unlink()
    (stick / "kiosk-sync" / "k-01").mkdir()
    (stick / "kiosk-sync" / "k-01" / "00000001.bundle").symlink_to(outside / "precious")
    with pytest.raises(SyncError, match="a link, folder or device where a bundle goes"):
        k.export(stick)
    (stick / "kiosk-sync" / "k-01" / "00000001.bundle").unlink()
    (stick / "kiosk-sync" / "k-01" / "ack").symlink_to(outside / "precious")
    result = k.export(stick)
    assert result.written == [1] and "symbolic link" in result.notes[0]
    assert sorted(p.name for p in outside.iterdir()) == ["precious"] and (outside / "precious").read_text() == "keep"


def test_fifos_and_devices_are_refused_unopened(k, stick, tmp_path):
    k.issue(1)
    folder = stick / "kiosk-sync" / "k-01"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "00000001.tmp")                           # opening it for writing would hang
    with pytest.raises(SyncError, match="in the way"):
        k.export(stick)
    (folder / "00000001.tmp").unlink()
    os.mkfifo(folder / "ack")
    assert "device, FIFO or socket" in k.export(stick).notes[0]
    inbox = stick / "kiosk-sync" / "inbox"
    inbox.mkdir()
    try:
        os.mknod(inbox / "zero.signed", stat.S_IFCHR | 0o600, os.makedev(1, 5))   # /dev/zero: endless bytes
    except PermissionError:
        os.mkfifo(inbox / "zero.signed")
    with pytest.raises(SyncError, match="not a regular file: refused"):
        run_import(k, stick)


def test_a_stick_with_too_many_files_is_refused_after_the_limit(k, stick):
    """A million files would take minutes to list; the listing stops at the limit (shown with limit + 1)."""
    inbox = stick / "kiosk-sync" / "inbox"
    inbox.mkdir(parents=True)
    for i in range(MAX_INBOX_ENTRIES + 1):
        (inbox / f"{i}.signed").write_bytes(b"")
    config = k.config.read_bytes()
    with pytest.raises(SyncError, match=f"more than {MAX_INBOX_ENTRIES} entries: refused"):
        run_import(k, stick)
    assert k.config.read_bytes() == config


def test_a_huge_sparse_file_is_refused_unread(k, stick):
    inbox = stick / "kiosk-sync" / "inbox"
    inbox.mkdir(parents=True)
    with open(inbox / "big.signed", "wb") as f:
        f.truncate(4 << 30)                                       # 4 GiB announced, nothing on disk
    with pytest.raises(SyncError, match="4,294,967,296 bytes, above the limit of 1,048,576: refused unread"):
        run_import(k, stick)


def test_a_file_system_that_lies_about_sizes(k, stick, monkeypatch):
    Office(k).signed(stick, "1.signed", {"kind": "delete", "sequence": 1, "citizens": []})
    real = os.fstat

    def lying_fstat(fd):
        st = real(fd)
        if stat.S_ISREG(st.st_mode):
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 10,
                                   st.st_atime, st.st_mtime, st.st_ctime))
        return st

    monkeypatch.setattr(stickfs.os, "fstat", lying_fstat)
    with pytest.raises(SyncError, match="said 10 bytes but gave more: refused"):
        run_import(k, stick)
    monkeypatch.undo()
    assert run_import(k, stick).applied


def test_odd_names_are_ignored_and_never_joined_into_paths(k, stick):
    office = Office(k)
    office.signed(stick, "a..b.signed", {"kind": "config", "sequence": 1, "toml": '[kiosk]\noffice = "X"\n'})
    office.signed(stick, "..signed", {"kind": "config", "sequence": 2, "toml": '[kiosk]\noffice = "X"\n'})
    office.signed(stick, "-rf.signed", {"kind": "config", "sequence": 3, "toml": '[kiosk]\noffice = "X"\n'})
    result = run_import(k, stick)
    assert not result.applied and not result.rejected
    with pytest.raises(stickfs.StickError, match="refused file name"):
        stickfs.check_name("../etc")


def test_a_flood_of_files_in_the_kiosk_folder_costs_the_export_nothing(k, stick):
    """The export never lists a stick folder: it opens the few names it knows."""
    folder = stick / "kiosk-sync" / "k-01"
    folder.mkdir(parents=True)
    for i in range(3000):
        (folder / f"junk{i:05d}.bundle").write_bytes(b"")
    k.issue(1)
    calls = PulledOut(0)                                          # never fails; counts the stick calls
    assert k.export(stick, ops=calls).written == [1]
    assert calls.calls == 5                                       # open, write, fsync, rename, fsync
