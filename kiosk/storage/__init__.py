"""Crash-safe files for the kiosk's data: a tinydb ``Storage`` that never leaves a half-written file.

tinydb's default ``JSONStorage`` rewrites its whole file in place on every change, so a power cut mid-write
corrupts it and every insert costs a rewrite of all history. Everything here writes in one of two safe ways:

* append one self-checking record (``<crc32 hex> <json>\\n``) and ``fsync`` it — a torn last record is detected
  by its checksum and dropped, never mistaken for data;
* replace a whole file atomically: write a temporary file, ``fsync`` it, ``rename`` it over the old one,
  ``fsync`` the folder (:func:`atomic_write`).

:class:`JournalStorage` combines both for tinydb: each ``write`` appends only the documents that changed, and
the journal is compacted into a single snapshot record (atomically) once it outgrows the snapshot.
:class:`RecordLog` is the plain append-only variant (audit log, visit archives); :class:`TemplateFile` keeps
face templates as fixed-size binary records that numpy loads in one pass.

Damaged files are never deleted: a torn tail is saved beside the file (``name.torn-<time>``), a file damaged in
the middle is kept as ``name.corrupt-<time>`` and replaced by its last good state. What was done is reported in
``problems`` (one human-readable line each) so the store can tell the technician.

One module per job: :mod:`~kiosk.storage.files` (durable writes, setting damaged bytes aside),
:mod:`~kiosk.storage.records` (the self-checking line format, its scan, the ``name.sum`` sidecar),
:mod:`~kiosk.storage.log` (:class:`RecordLog`), :mod:`~kiosk.storage.journal` (:class:`JournalStorage`),
:mod:`~kiosk.storage.templates` (:class:`TemplateFile`) and :mod:`~kiosk.storage.slots` (:class:`SlotFile`).
"""
from kiosk.storage.files import (
    TEMP_MARK,
    StorageError,
    atomic_write,
    fsync_dir,
    keep_torn_tail,
    remove_stale_temps,
    set_aside,
)
from kiosk.storage.journal import JournalStorage
from kiosk.storage.log import RecordLog
from kiosk.storage.records import (
    Scan,
    encode_record,
    proven_loss,
    read_checksum,
    replace_with_checksum,
    scan_records,
    write_checksum,
)
from kiosk.storage.slots import SlotFile
from kiosk.storage.templates import (
    HEADER,
    LIVE,
    RECORD,
    RECORD_SIZE,
    SEALED_HEADER,
    TEMPLATE_DIM,
    TEMPLATE_MAGIC,
    TEMPLATE_VERSION,
    WIPED,
    TemplateCheck,
    TemplateFile,
    hex_ids,
    scrub_copies,
    seal_copies,
    set_aside_copies,
)

__all__ = [
    "HEADER", "LIVE", "RECORD", "RECORD_SIZE", "SEALED_HEADER", "TEMPLATE_DIM", "TEMPLATE_MAGIC", "TEMPLATE_VERSION", "TEMP_MARK",
    "WIPED", "JournalStorage", "RecordLog", "Scan", "SlotFile", "StorageError", "TemplateCheck", "TemplateFile",
    "atomic_write", "encode_record", "fsync_dir", "hex_ids", "keep_torn_tail", "read_checksum",
    "proven_loss", "remove_stale_temps", "replace_with_checksum", "scan_records", "scrub_copies", "seal_copies", "set_aside", "set_aside_copies",
    "write_checksum",
]
