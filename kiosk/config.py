"""Configuration: one TOML file, validated once at start into frozen dataclasses.

Every error names the key it is about (``categories[2].pin``), so a technician can fix the file
without reading code. Unknown keys are errors too: a typo must not silently fall back to a default.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.config_desk import RatingConfig, StaffConfig, desk_pins, desk_sections
from kiosk.config_values import MAX_TEXT, ConfigError, _check_text, _coerce, _short  # noqa: F401 (re-exported)
from kiosk.rules import Rules, config_rules

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

PACKAGED_CONFIGS = Path(__file__).resolve().parent / "configs"
SIMULATION_CONFIG = PACKAGED_CONFIGS / "simulate.toml"


# Every number's meaningful range, checked after its type: (lowest, highest, lowest allowed itself). A value the
# kiosk cannot mean (nan, a negative width, 2**63 frames) is an error naming the key, never a failsafe later.
LIMITS: dict[str, tuple[float, float, bool]] = {
    "kiosk.min_free_mb": (0, 1_000_000, True),
    "buttons.bounce_time": (0, 2, True),
    "camera.width": (16, 10_000, True),
    "camera.height": (16, 10_000, True),
    "camera.device": (0, 63, True),
    "camera.idle_fps": (0, 120, False),
    "camera.active_fps": (0, 120, False),
    "camera.max_image_pixels": (10_000, 100_000_000, True),
    "printer.usb_vendor": (0, 0xFFFF, True),
    "printer.usb_product": (0, 0xFFFF, True),
    "printer.baudrate": (300, 4_000_000, True),
    "printer.port": (1, 65_535, True),
    "recognition.confirm_frames": (1, 30, True),
    "recognition.enrol_frames": (1, 30, True),
    "recognition.min_face_px": (1, 4096, True),
    "recognition.min_sharpness": (0, 1_000_000, True),
    "recognition.max_yaw_ratio": (0, 1, False),
    "recognition.dominance": (1, 100, True),
    "recognition.detect_width": (32, 4096, True),
    "identity.max_templates": (1, 100, True),
    "identity.min_age_for_face": (0, 120, True),
    "screen.width": (160, 8192, True),
    "screen.height": (120, 8192, True),
    "screen.min_text_px": (8, 200, True),
    "voice.volume": (0, 1, True),
    **{f"timing.{name}": (0, 3600, True) for name in
       ("greeting_seconds", "settle_seconds", "consent_seconds", "done_seconds", "failsafe_seconds",
        "unprinted_seconds")},
    **{f"privacy.{name}": (1, 1200, True) for name in
       ("templates_months", "card_months", "visit_link_months", "records_extra_months")},
}
def _check_limit(key: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is within LIMITS[key] (keys without a limit pass)."""
    if key not in LIMITS or value is None:
        return
    low, high, low_ok = LIMITS[key]
    if not (low <= value if low_ok else low < value) or value > high:
        lowest = f"{low:g}" if low_ok else f"above {low:g}"
        raise ConfigError(f"{key}: must be {lowest} to {high:g}, got {value!r}")


@dataclass(frozen=True)
class Category:
    key: str
    prefix: str
    name_vi: str
    name_en: str
    pin: int | None


@dataclass(frozen=True)
class ButtonsConfig:
    consent_pin: int | None = None
    bounce_time: float = 0.05
    pull_up: bool = True
    consent_label: str = "Y"           # the word on the physical consent button: the screen names it so


@dataclass(frozen=True)
class CameraConfig:
    kind: str = "none"                 # picamera2 | opencv | files | none
    width: int = 640
    height: int = 480
    device: int = 0                    # opencv webcam index
    folder: str = ""                   # files: a folder of images played as frames
    idle_fps: float = 2.0              # nobody in view: look rarely
    active_fps: float = 8.0            # somebody in view
    max_image_pixels: int = 40_000_000  # an image file (replay, files camera) bigger than this is refused unread


@dataclass(frozen=True)
class PrinterConfig:
    connection: str = "simulated"      # usb | serial | network | file | simulated
    paper_mm: int = 80
    usb_vendor: int | None = None
    usb_product: int | None = None
    serial_port: str = "/dev/ttyUSB0"
    baudrate: int = 19200
    host: str = ""
    port: int = 9100
    device: str = "/dev/usb/lp0"
    out_dir: str = "kiosk-data/printed"   # simulated: where .bin + .png land

    @property
    def width_dots(self) -> int:
        return {58: 384, 80: 576}[self.paper_mm]


@dataclass(frozen=True)
class RecognitionConfig:
    enabled: bool = True
    enrolment: bool = True             # offer consent + enrolment to unknown faces
    threshold: float = 0.54
    margin: float = 0.05
    confirm_frames: int = 2
    enrol_frames: int = 3
    min_face_px: int = 48
    min_sharpness: float = 20.0
    max_yaw_ratio: float = 0.4
    dominance: float = 2.0
    detect_width: int = 320
    autolink_below: float | None = None  # a face match this close links without asking "is this you?"; unset = always ask
    unsure_below: float | None = None    # no match, but nearer than this: ask for the card, never offer face-only enrolment


@dataclass(frozen=True)
class IdentityConfig:
    secret_file: str = "/etc/kiosk/office-secret"   # per-office HMAC key for card numbers; missing = cards not used
    keep: tuple[str, ...] = ("name", "birth_date", "sex")   # card fields kept in the record ("address" too if needed)
    max_templates: int = 5             # face templates kept per card holder; the oldest go first
    min_age_for_face: int = 18         # younger card holders never get face templates
    ticket_fields: tuple[str, ...] = ("name", "card_number", "birth_date")   # in the ticket's sealed QR code


@dataclass(frozen=True)
class ScreenConfig:
    width: int = 800
    height: int = 480
    fullscreen: bool = True
    driver: str = ""                   # SDL video driver ("kmsdrm" on a Pi); SDL_VIDEODRIVER overrides it; "" = SDL's
    min_text_px: int = 16              # no text smaller (README, "Readable by everyone": 7" 800x480 at 60 cm)


@dataclass(frozen=True)
class TimingConfig:
    greeting_seconds: float = 20.0     # greeting with no button pressed -> back to idle
    settle_seconds: float = 2.0        # button pressed while the face is still being recognised: wait this long
    consent_seconds: float = 10.0      # no answer within this -> "no"
    done_seconds: float = 6.0
    failsafe_seconds: float = 4.0
    unprinted_seconds: float = 60.0    # a ticket that did not print stays on screen this long (or to the next citizen)


@dataclass(frozen=True)
class VoiceConfig:
    enabled: bool = True               # each screen's sentence and the ticket number said aloud (assets/voice)
    volume: float = 0.8                # 0..1


@dataclass(frozen=True)
class SyncConfig:
    """USB sync keys (kiosk/sync.py): kept OUTSIDE the data folder, so a copy of the data carries no key."""
    key_file: str = "/etc/kiosk/kiosk-sync.key"          # the kiosk's Ed25519 key, created by `kiosk keys`
    office_key_file: str = "/etc/kiosk/office-sync.pub"  # the office's public key, set by `kiosk keys --set-office`
    hotplug: str = "udisks"        # sticks plugged in: "udisks" (udev + udisks2), "folder" (simulation), "off"
    sticks_folder: str = "kiosk-sticks"   # hotplug = "folder": each sub-folder that appears is a stick


@dataclass(frozen=True)
class PrivacyConfig:
    """Encryption at rest (kiosk/datakey.py): the key is never in the data folder."""
    key_source: str = "file"                   # "board": the Pi 4/5's OTP key; "file": key_file (laptop, CI)
    key_file: str = "/etc/kiosk/data.key"      # 0600, made by `kiosk privacy-key` (simulation: on first use)
    templates_months: int = 12                 # face templates (and their consent) after the last visit
    card_months: int = 24                      # card records after the last visit
    visit_link_months: int = 24                # a visit's link to its citizen (the visit stays, anonymous)
    records_extra_months: int = 12             # deletion receipts after the deletion


@dataclass(frozen=True)
class Config:
    kiosk_id: str
    office: str
    data_dir: Path
    day_start_hour: int
    simulate: bool
    categories: tuple[Category, ...]
    buttons: ButtonsConfig = field(default_factory=ButtonsConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    printer: PrinterConfig = field(default_factory=PrinterConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    screen: ScreenConfig = field(default_factory=ScreenConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    min_free_mb: int = 200             # below this much free space on the data folder, staff are warned
    sync: SyncConfig = field(default_factory=SyncConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    rules: Rules = field(default_factory=Rules)   # [hours] [caps] [priority] [numbers]: kiosk/rules.py
    rating: RatingConfig = field(default_factory=RatingConfig)     # kiosk.config_desk
    staff: StaffConfig = field(default_factory=StaffConfig)
    voice: VoiceConfig = field(default_factory=VoiceConfig)

    def category(self, key: str) -> Category:
        for category in self.categories:
            if category.key == key:
                return category
        raise KeyError(key)


def load_config(path: Path | str, *, data_dir: Path | None = None, office_override: bool = True) -> Config:
    """Read and validate ``path``; raise ConfigError naming the file and key.

    ``data_dir`` replaces ``kiosk.data_dir``. The office's update in the data folder, if any, is layered over the
    file for the keys the office may change (kiosk/officeconfig.py); an unusable one is logged and ignored.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        config = parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    data = Path(data_dir) if data_dir is not None else config.data_dir
    if office_override:
        from kiosk.officeconfig import layered

        raw, why = layered(raw, data)
        if why is None:
            config = parse_config(raw)
    return replace(config, data_dir=data) if data_dir is not None else config


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate an already-parsed TOML document."""
    _only(raw, "", {"kiosk", "categories", "buttons", "camera", "printer", "recognition", "identity", "screen",
                    "timing", "sync", "privacy", "rating", "staff", "voice", "hours", "caps", "priority", "numbers"})
    kiosk = _table(raw, "kiosk")
    _only(kiosk, "kiosk", {"id", "office", "data_dir", "day_starts_at_hour", "simulate", "min_free_mb"})
    kiosk_id = _str(kiosk, "kiosk.id", "id", required=True)
    if (not kiosk_id.isascii() or not kiosk_id.replace("-", "").replace("_", "").isalnum()
            or len(kiosk_id) > 64):
        raise ConfigError(f"kiosk.id: up to 64 letters, digits, '-' or '_', got {_short(kiosk_id)}")
    day_start = _int(kiosk, "kiosk.day_starts_at_hour", "day_starts_at_hour", default=0)
    if not 0 <= day_start <= 23:
        raise ConfigError(f"kiosk.day_starts_at_hour: must be an hour 0-23, got {day_start}")
    min_free_mb = _int(kiosk, "kiosk.min_free_mb", "min_free_mb", default=200)
    _check_limit("kiosk.min_free_mb", min_free_mb)

    categories = _categories(raw.get("categories"))
    buttons = _section(raw, "buttons", ButtonsConfig)
    camera = _section(raw, "camera", CameraConfig)
    printer = _section(raw, "printer", PrinterConfig)
    recognition = _section(raw, "recognition", RecognitionConfig, floats=("autolink_below", "unsure_below"))
    identity = _identity(raw)
    screen = _section(raw, "screen", ScreenConfig)
    timing = _section(raw, "timing", TimingConfig)
    sync = _section(raw, "sync", SyncConfig)
    privacy = _section(raw, "privacy", PrivacyConfig)
    rating, staff = desk_sections(raw, _section)
    if not 1 <= len(buttons.consent_label.strip()) <= 12:
        raise ConfigError(f"buttons.consent_label: 1 to 12 characters, got {buttons.consent_label!r}")
    _check_choice("privacy.key_source", privacy.key_source, ("file", "board"))

    _check_choice("camera.kind", camera.kind, ("picamera2", "opencv", "files", "none"))
    _check_choice("printer.connection", printer.connection, ("usb", "serial", "network", "file", "simulated"))
    _check_choice("printer.paper_mm", printer.paper_mm, (58, 80))
    if printer.connection == "usb" and (printer.usb_vendor is None or printer.usb_product is None):
        raise ConfigError("printer.usb_vendor: a USB printer needs usb_vendor and usb_product (e.g. 0x0416)")
    if printer.connection == "network" and not printer.host:
        raise ConfigError("printer.host: a network printer needs a host")
    if screen.driver and not (screen.driver.isascii() and screen.driver.isalnum()):
        raise ConfigError(f"screen.driver: an SDL video driver name such as kmsdrm, got {screen.driver!r}")
    if camera.kind == "files" and not camera.folder:
        raise ConfigError("camera.folder: a files camera needs a folder of images")
    if not 0 < recognition.threshold < 1.5:
        raise ConfigError(f"recognition.threshold: must be between 0 and 1.5, got {recognition.threshold}")
    if not 0 <= recognition.margin < recognition.threshold:  # nan fails every comparison: refused
        raise ConfigError("recognition.margin: must be at least 0 and below the threshold")
    if recognition.autolink_below is not None and not 0 < recognition.autolink_below <= recognition.threshold:
        raise ConfigError(f"recognition.autolink_below: must be above 0 and at most the threshold "
                          f"({recognition.threshold}), got {recognition.autolink_below}")
    if recognition.unsure_below is not None and not recognition.threshold <= recognition.unsure_below < 1.5:
        raise ConfigError(f"recognition.unsure_below: must be at least the threshold ({recognition.threshold}) "
                          f"and below 1.5, got {recognition.unsure_below}")

    rules = config_rules(raw, [c.key for c in categories], kiosk_id)      # kiosk/rules.py
    pins = [(f"categories[{i}].pin", c.pin) for i, c in enumerate(categories)]
    pins += [("buttons.consent_pin", buttons.consent_pin)] + desk_pins(rating, staff) + rules.pins()
    seen: dict[int, str] = {}
    for key, pin in pins:
        if pin is None:
            continue
        if not 0 <= pin <= 27:
            raise ConfigError(f"{key}: GPIO pin must be 0-27 (BCM numbering), got {pin}")
        if pin in seen:
            raise ConfigError(f"{key}: GPIO pin {pin} is already used by {seen[pin]}")
        seen[pin] = key
    simulate = _bool(kiosk, "kiosk.simulate", "simulate", default=False)
    if not simulate:
        missing = [key for key, pin in pins if pin is None]
        if missing:
            raise ConfigError(f"{missing[0]}: a real kiosk needs a GPIO pin here")

    data_dir = Path(_str(kiosk, "kiosk.data_dir", "data_dir", default="kiosk-data"))
    for name in ("key_file", "office_key_file"):
        if not getattr(sync, name):
            raise ConfigError(f"sync.{name}: must not be empty")
        if Path(getattr(sync, name)).resolve().is_relative_to(data_dir.resolve()):
            raise ConfigError(f"sync.{name}: must be outside the data folder {data_dir} "
                              f"(a copy of the data must not carry the keys)")
    if sync.hotplug not in ("udisks", "folder", "off"):
        raise ConfigError(f"sync.hotplug: expected \"udisks\", \"folder\" or \"off\", not {sync.hotplug!r}")
    if sync.hotplug == "folder" and not sync.sticks_folder.strip():
        raise ConfigError("sync.sticks_folder: a folder hotplug needs the folder its sticks appear in")
    if not privacy.key_file.strip():
        raise ConfigError("privacy.key_file: must not be empty")
    if Path(privacy.key_file).resolve().is_relative_to(data_dir.resolve()):
        raise ConfigError(f"privacy.key_file: must be outside the data folder {data_dir} "
                          f"(a copy of the data must not carry the key that opens it)")
    return Config(
        rules=rules, kiosk_id=kiosk_id,
        office=_str(kiosk, "kiosk.office", "office", required=True),
        data_dir=data_dir,
        day_start_hour=day_start,
        simulate=simulate,
        categories=categories,
        buttons=buttons,
        camera=camera,
        printer=printer,
        recognition=recognition,
        identity=identity,
        screen=screen,
        timing=timing,
        min_free_mb=min_free_mb,
        sync=sync,
        privacy=privacy, rating=rating, staff=staff,
        voice=_section(raw, "voice", VoiceConfig),
    )


def _categories(raw: Any) -> tuple[Category, ...]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("categories: at least one [[categories]] entry is needed")
    if len(raw) > 9:
        raise ConfigError("categories: at most 9 categories (one button and one number key each)")
    result = []
    keys: set[str] = set()
    prefixes: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"categories[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table")
        _only(entry, where, {"key", "prefix", "name_vi", "name_en", "pin"})
        key = _str(entry, f"{where}.key", "key", required=True)
        prefix = _str(entry, f"{where}.prefix", "prefix", required=True)
        if not key.isascii() or not key.replace("-", "").isalnum() or key != key.lower():
            raise ConfigError(f"{where}.key: lower-case letters, digits and '-' only, got {key!r}")
        if not (prefix.isascii() and prefix.isalpha() and prefix.isupper() and len(prefix) <= 3):
            raise ConfigError(f"{where}.prefix: 1-3 upper-case ASCII letters (printed as text), got {prefix!r}")
        if key in keys:
            raise ConfigError(f"{where}.key: {key!r} is used twice")
        if prefix in prefixes:
            raise ConfigError(f"{where}.prefix: {prefix!r} is used twice (ticket numbers would clash)")
        keys.add(key)
        prefixes.add(prefix)
        pin = entry.get("pin")
        if pin is not None and (not isinstance(pin, int) or isinstance(pin, bool)):
            raise ConfigError(f"{where}.pin: expected an integer GPIO pin, got {_short(pin)}")
        result.append(Category(
            key=key,
            prefix=prefix,
            name_vi=_str(entry, f"{where}.name_vi", "name_vi", required=True),
            name_en=_str(entry, f"{where}.name_en", "name_en", required=True),
            pin=pin,
        ))
    return tuple(result)


def _section(raw: dict[str, Any], name: str, cls: type[DataclassInstance], *, floats: tuple[str, ...] = ()) -> Any:
    """Build dataclass ``cls`` from table ``name``, type-checking each key against the defaults;
    ``floats``: optional keys (default None) that take a number.
    """
    table = _table(raw, name, required=False)
    fields = cls.__dataclass_fields__
    _only(table, name, set(fields))
    values = {}
    for key, value in table.items():
        default = 0.0 if key in floats else fields[key].default
        expected = fields[key].type
        values[key] = _coerce(f"{name}.{key}", value, default, expected)
        _check_limit(f"{name}.{key}", values[key])
    return cls(**values)


CARD_FIELDS = ("name", "birth_date", "sex", "address")


def _identity(raw: dict[str, Any]) -> IdentityConfig:
    """The [identity] section: ``keep`` is a list of card fields, the rest plain values."""
    table = dict(_table(raw, "identity", required=False))
    lists = {name: table.pop(name, None) for name in ("keep", "ticket_fields")}
    section = _section({"identity": table}, "identity", IdentityConfig)
    for name, value in lists.items():
        known = CARD_FIELDS if name == "keep" else ("card_number", *CARD_FIELDS)    # kiosk/ticketcode.py's
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"identity.{name}: expected a list of field names, got {_short(value)}")
        if unknown := [k for k in value if k not in known]:
            raise ConfigError(f"identity.{name}: unknown field {unknown[0]!r} (known: {', '.join(known)})")
        section = replace(section, **{name: tuple(dict.fromkeys(value))})
    if not section.secret_file.strip():
        raise ConfigError("identity.secret_file: expected a file path")
    return section


def _table(raw: dict[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        if required:
            raise ConfigError(f"{name}: the [{name}] section is missing")
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: must be a table ([{name}])")
    return value


def _only(table: dict[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{prefix}{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _str(table: dict[str, Any], key: str, name: str, *, required: bool = False, default: str = "") -> str:
    value = table.get(name)
    if value is None:
        if required:
            raise ConfigError(f"{key}: missing")
        return default
    if not isinstance(value, str) or (required and not value.strip()):
        raise ConfigError(f"{key}: expected a non-empty string, got {_short(value)}")
    _check_text(key, value)
    return value


def _int(table: dict[str, Any], key: str, name: str, *, default: int) -> int:
    return _coerce(key, table.get(name, default), default, "int")


def _bool(table: dict[str, Any], key: str, name: str, *, default: bool) -> bool:
    return _coerce(key, table.get(name, default), default, "bool")


def _check_choice(key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: must be one of {', '.join(map(str, choices))}; got {value!r}")
