"""The ``kiosk`` command: run the kiosk, replay a script, and the technician's tools."""
from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import sys
import warnings
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

# Before numpy loads: one OpenBLAS thread. Its extra threads spin on the other core, which the loop and the screen
# need, and cost more CPU than they save on the kiosk's small products (the face index's build: 0.4 CPU-s with
# one thread, 1.65 with two, benchmarks/startup.py's data).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from kiosk.config import SIMULATION_CONFIG, Config, ConfigError, load_config
from kiosk.display import EX_CONFIG

if TYPE_CHECKING:
    from kiosk.datakey import DataKey

DEFAULT_CONFIG = Path("/etc/kiosk/kiosk.toml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk", description="Face-recognition queue-ticket kiosk")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the kiosk (the systemd service runs this)")
    run.add_argument("--config", type=Path, help=f"config file (default {DEFAULT_CONFIG}; "
                                                 "with --simulate the shipped simulation config)")
    run.add_argument("--simulate", action="store_true", help="simulated hardware: window, files, keyboard")
    run.add_argument("--camera-folder", type=Path, help="simulation: play this folder of images as the camera")
    run.add_argument("--data", type=Path, help="data folder (overrides kiosk.data_dir)")
    run.add_argument("--exit-after", type=float, help="stop after this many seconds (smoke tests)")

    replay = sub.add_parser("replay", help="drive the kiosk headless from a JSON Lines script")
    replay.add_argument("script", type=Path)
    replay.add_argument("--data", type=Path, required=True, help="data folder (kept between replays)")
    replay.add_argument("--out", type=Path, required=True, help="folder for the tickets' .bin and .png")
    replay.add_argument("--config", type=Path, help="config file (default: the shipped simulation config)")

    visits = sub.add_parser("visits", help="list stored visits")
    visits.add_argument("--data", type=Path, help="data folder (default: from the config)")
    visits.add_argument("--config", type=Path, default=None)
    visits.add_argument("--since", type=_day, help="YYYY-MM-DD")
    visits.add_argument("--json", action="store_true", help="one JSON object a line")

    citizens = sub.add_parser("citizens", help="list citizens: id, masked name, card, face templates, visits")
    citizens.add_argument("--data", type=Path, help="data folder (default: from the config)")
    citizens.add_argument("--config", type=Path, default=None)
    citizens.add_argument("--json", action="store_true", help="one JSON object a line")
    citizens.add_argument("--key", type=Path, default=None,
                          help="data key file to show masked names (default: the config's, or DATA.key beside --data)")

    calibrate = sub.add_parser("calibrate", help="threshold, margin, unsure_below from labelled photos; "
                                                 "autolink_below from a large gallery (--scale)")
    from kiosk.calibrate import add_arguments as calibrate_arguments
    calibrate_arguments(calibrate)
    calibrate.set_defaults(calibrate_parser=calibrate)    # its usage errors name `kiosk calibrate`

    doctor = sub.add_parser("doctor", help="self-test: config, fonts, store, face models, camera, printer, buttons")
    doctor.add_argument("--config", type=Path, default=None)
    doctor.add_argument("--simulate", action="store_true", help="check the shipped simulation config")
    doctor.add_argument("--data", type=Path, help="data folder (overrides kiosk.data_dir)")

    forget = sub.add_parser("forget", help="delete a citizen's face templates and record (stop the service first)")
    forget.add_argument("citizen", help="the citizen id printed on the consent receipt (or its first 6+ digits)")
    forget.add_argument("--config", type=Path, default=None)
    forget.add_argument("--data", type=Path, help="data folder (overrides kiosk.data_dir)")
    forget.add_argument("--no-print", action="store_true", help="do not print the deletion receipt")

    service = sub.add_parser("service", help="close a service for the rest of the day, or open it again "
                                             "(beside a running kiosk too; recorded in the audit log)")
    service.add_argument("action", choices=("close", "open"))
    service.add_argument("key", help="the service's key in the config, e.g. ho-tich")
    service.add_argument("--config", type=Path, default=None)
    service.add_argument("--data", type=Path, help="data folder (overrides kiosk.data_dir)")

    clock = sub.add_parser("clock", help="check the clock against the latest ticket; --accept-now after a jump "
                                         "forward (stop the service first)")
    clock.add_argument("--config", type=Path, default=None)
    clock.add_argument("--data", type=Path, help="data folder (overrides kiosk.data_dir)")
    clock.add_argument("--accept-now", action="store_true",
                       help="the clock is right now: number today's service day again, above today's numbers")

    print_test = sub.add_parser("print-test", help="print a test ticket on the configured printer")
    print_test.add_argument("--config", type=Path, default=None)

    from kiosk.cli_ratings import add_command as ratings_command
    ratings_command(sub, _day)
    _add_sync_commands(sub)
    _add_privacy_commands(sub)

    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")   # pygame's banner is no news to a technician
    # pygame and face_recognition_models import pkg_resources (pinned setuptools): noise for technicians.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    try:
        status = _dispatch(args)
        sys.stdout.flush()          # a closed pipe shows here, inside the handlers below, not at exit
        return status
    except ConfigError as exc:
        print(f"kiosk: config error: {exc}", file=sys.stderr)
        # The service gets EX_CONFIG, which its unit does not restart: the file needs a person first.
        return EX_CONFIG if args.command == "run" else 2
    except PermissionError as exc:
        where = exc.filename or "a kiosk file"
        print(f"kiosk {args.command}: {where}: permission denied; run it as the kiosk user: "
              f"sudo -u kiosk kiosk {args.command} ...", file=sys.stderr)
        return 4
    except BrokenPipeError:
        return _pipe_closed()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        return _pipe_closed()
    except KeyboardInterrupt:          # Ctrl-C: the person knows, no traceback; the shell's code for SIGINT
        return 130


def _pipe_closed() -> int:
    """The reader went away (`kiosk visits | head`): stop quietly, the shell's code for SIGPIPE.

    stdout points at /dev/null from here so the interpreter's last flush does not fail again at exit.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):       # stdout replaced (tests) or already closed: nothing to redirect
        pass
    return 141


def _day(text: str) -> date:
    """A command-line date; the error says the form expected."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: expected YYYY-MM-DD, e.g. 2026-12-01") from None


def _add_privacy_commands(sub: argparse._SubParsersAction) -> None:
    """Privacy (kiosk/cli_privacy.py): the audit chain, the data key, the record of processing."""
    audit = sub.add_parser("audit", help="verify the audit log's hash chain")
    audit.add_argument("action", choices=["verify"])
    key = sub.add_parser("privacy-key", help="make the data key file (0600, outside the data folder) at install")
    report = sub.add_parser("privacy-report", help="the record of processing: data classes, counts, retention")
    report.add_argument("--json", action="store_true")
    for p in (audit, key, report):
        p.add_argument("--config", type=Path, default=None)
        p.add_argument("--data", type=Path, help="data folder (overrides kiosk.data_dir)")


def _privacy_dispatch(args: argparse.Namespace) -> int:
    from kiosk import cli_privacy

    if args.command == "audit":
        return cli_privacy.audit_verify(args.data or _config(args).data_dir)
    config = _config(args)
    if args.command == "privacy-key":
        return cli_privacy.privacy_key(config)
    return cli_privacy.privacy_report(config, config.data_dir, as_json=args.json)


def _add_sync_commands(sub: argparse._SubParsersAction) -> None:
    """USB sync (kiosk/sync.py, kiosk/syncinbox.py): keys, export, import; each takes --config and --data."""
    keys = sub.add_parser("keys", help="show the kiosk's sync public key (created on first use); set the office's")
    keys.add_argument("--set-office", metavar="PUBKEY|FILE", help="the office public key (kiosk-office-v1:...)")
    export = sub.add_parser("export", help="write everything the office has not acknowledged to a stick (folder)")
    export.add_argument("--to", type=Path, required=True, metavar="DIR", help="the mounted stick (or a folder)")
    imp = sub.add_parser("import", help="apply the office's signed files in DIR/kiosk-sync/inbox/")
    imp.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR", help="the mounted stick")
    for parser in (keys, export, imp):
        parser.add_argument("--config", type=Path, default=None)
        parser.add_argument("--data", type=Path, help="data folder (overrides kiosk.data_dir)")


def _data_key_if_any(config: Config) -> DataKey | None:
    """The data key for a command that can do without it (``kiosk export`` keeps its bundles' plaintext with
    it, so that a deletion reaches them); never writes a check file."""
    from kiosk.datakey import KeySource, KeyUnavailable, load_key

    try:
        return load_key(KeySource(config.privacy.key_source, Path(config.privacy.key_file)), config.data_dir,
                        write_check=False)
    except KeyUnavailable:
        return None


def _sync_dispatch(args: argparse.Namespace) -> int:
    config_path = args.config or DEFAULT_CONFIG
    config = _config(args)
    data = config.data_dir
    from kiosk.synckeys import keys_command, office_key_file_in_use

    key_file, office_file = Path(config.sync.key_file), Path(config.sync.office_key_file)
    if args.command == "keys":
        return keys_command(key_file=key_file, office_key_file=office_file, kiosk_id=config.kiosk_id,
                            set_office=args.set_office, out=sys.stdout, data_dir=data)
    office_file = office_key_file_in_use(office_file, data)     # a key the office rotated to, if any
    if args.command == "export":
        from kiosk.sync import export_command

        return export_command(args.to, data_dir=data, kiosk_id=config.kiosk_id, key_file=key_file,
                              office_key_file=office_file, out=sys.stdout, card_fields=config.identity.keep,
                              data_key=_data_key_if_any(config))
    from kiosk.syncinbox import import_command

    return import_command(args.source, data_dir=data, kiosk_id=config.kiosk_id,
                          day_start_hour=config.day_start_hour, office_key_file=office_file,
                          config_path=config_path, out=sys.stdout, secret_file=Path(config.identity.secret_file))


def _dispatch(args: argparse.Namespace) -> int:
    if args.command in ("keys", "export", "import"):
        return _sync_dispatch(args)
    if args.command in ("audit", "privacy-key", "privacy-report"):
        return _privacy_dispatch(args)
    if args.command == "run":
        config = _config(args, SIMULATION_CONFIG if args.simulate else DEFAULT_CONFIG)
        from kiosk import app
        from kiosk.display import DisplayError
        from kiosk.store import StoreError

        if args.simulate:
            config = dataclasses.replace(config, simulate=True,
                                         screen=dataclasses.replace(config.screen, fullscreen=False))
        try:
            return app.run(config, camera_folder=args.camera_folder, exit_after=args.exit_after,
                           config_path=args.config or (SIMULATION_CONFIG if args.simulate else DEFAULT_CONFIG))
        except StoreError as exc:
            print(f"kiosk: {exc}", file=sys.stderr)
            return 3
        except DisplayError as exc:
            print(f"kiosk: {exc}", file=sys.stderr)
            return EX_CONFIG if exc.missing_driver else 1
    if args.command == "replay":
        from kiosk.replay import main as replay_main

        return replay_main(args.script, data_dir=args.data, out_dir=args.out, config_path=args.config)
    if args.command == "visits":
        from kiosk.cli_store import print_visits

        data = args.data or _config(args).data_dir   # with --data no config file is needed
        return print_visits(data, args.since, args.json)
    if args.command == "ratings":
        from kiosk.cli_ratings import print_ratings

        return print_ratings(args.data or _config(args).data_dir, args.since, args.json)
    if args.command == "citizens":
        from kiosk.cli_store import print_citizens

        if args.data:                                     # with --data no config file is needed
            return print_citizens(args.data, args.json, key_file=args.key)
        cfg = _config(args)
        key_file = args.key or (Path(cfg.privacy.key_file) if cfg.privacy.key_source == "file" else None)
        return print_citizens(cfg.data_dir, args.json, key_file=key_file)
    if args.command == "calibrate":
        from kiosk.calibrate import execute as calibrate_execute

        return calibrate_execute(args, args.calibrate_parser)
    if args.command == "doctor":
        from kiosk.doctor import report, run_checks

        path = args.config or (SIMULATION_CONFIG if args.simulate else DEFAULT_CONFIG)
        config = _config(args, path)
        print(f"OK   config     {path}")
        return report(run_checks(config))
    if args.command == "forget":
        from kiosk.cli_store import forget

        config = _config(args)
        return forget(config, args.citizen, print_receipt=not args.no_print)
    if args.command == "service":
        from kiosk.cli_service import service_command

        return service_command(_config(args), args.action, args.key)
    if args.command == "clock":
        from datetime import datetime

        from kiosk.cli_store import clock_command

        config = _config(args)
        return clock_command(config.data_dir, kiosk_id=config.kiosk_id,
                             day_start_hour=config.day_start_hour, accept=args.accept_now, now=datetime.now())
    if args.command == "print-test":
        from kiosk.app import make_printer
        from kiosk.paths import FONT_REGULAR
        from kiosk.printing import print_test

        config = _config(args)
        ok = print_test(make_printer(config), width_dots=config.printer.width_dots, font_path=FONT_REGULAR,
                        office=config.office, kiosk_id=config.kiosk_id)
        print("printed" if ok else "printer failed: see the log above")
        return 0 if ok else 1
    raise AssertionError(args.command)


def _config(args: argparse.Namespace, default: Path | None = None) -> Config:
    """The config named by ``--config`` (else ``default``, else the installed one), with ``--data`` in place of
    its data folder."""
    default = default or DEFAULT_CONFIG
    if args.config is None and default == DEFAULT_CONFIG and not DEFAULT_CONFIG.exists():
        hint = ", or --simulate for the shipped simulation config" if hasattr(args, "simulate") else \
            f" (the simulation's: --config {SIMULATION_CONFIG})"
        raise ConfigError(f"{default}: config file not found (this is not an installed kiosk?): "
                          f"point at a config with --config FILE{hint}")
    return load_config(args.config or default, data_dir=getattr(args, "data", None) or None)


def _setup_logging(verbose: bool) -> None:
    # Under systemd, journald adds the time and the unit; elsewhere print our own timestamps.
    fmt = "%(levelname)s %(name)s: %(message)s" if os.environ.get("JOURNAL_STREAM") \
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt, stream=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
