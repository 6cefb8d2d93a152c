#!/usr/bin/env bash
# Installs the queue-ticket kiosk as a service on Raspberry Pi OS Lite (Bookworm, 64-bit), from this checkout:
#
#   sudo ./install.sh               apt packages, venv, config, office secret, user, udev rule, unit, journald
#   sudo ./install.sh --uninstall   removes all of that but the data (/var/lib/kiosk) and /etc/kiosk
#   ./install.sh --dry-run          prints every step and changes nothing (no root needed)
#
# Running it again is safe: what is there already is left as it is (the config and the office secret are
# never overwritten), what changed in the checkout is installed again.
# For tests and image builds: --root DIR installs the files under DIR (no apt, no running systemd),
# --skip-venv leaves out the venv, --config FILE names the config installed when none is there yet.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=install.sh

APP_DIR=/opt/queue-kiosk                 # the unit runs $APP_DIR/.venv/bin/kiosk
VENV=$APP_DIR/.venv
CONSTRAINTS=$VENV/system-constraints.txt
ETC=/etc/kiosk
CONFIG=$ETC/kiosk.toml
SECRET=$ETC/office-secret
DATA=/var/lib/kiosk
SYSUSERS=/etc/sysusers.d/kiosk.conf
POLKIT_RULE=/etc/polkit-1/rules.d/50-kiosk-udisks.rules
UNIT=/etc/systemd/system/kiosk.service
DROPIN=/etc/systemd/system/kiosk.service.d/printer.conf
UDEV_RULE=/etc/udev/rules.d/70-kiosk-printer.rules
JOURNALD=/etc/systemd/journald.conf.d/kiosk.conf
SYSTEM_PYTHON=${KIOSK_SYSTEM_PYTHON:-python3}

# Debian packages: Python with venv, apt's numpy and Pillow (the camera stack's own), libusb for the printer,
# the libraries SDL's KMS/DRM video driver opens at run time (DRM, GBM, EGL, GLES and Mesa's drivers, udev
# and xkbcommon for keyboards), udisks2 (with polkit) that mounts USB sticks for the kiosk user.
APT_PACKAGES=(python3 python3-venv python3-numpy python3-pil ca-certificates udev libusb-1.0-0 libudev1
              libdrm2 libgbm1 libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri libxkbcommon0 udisks2 polkitd)
# Only in Raspberry Pi OS's own repository: the camera (picamera2 pulls libcamera and simplejpeg) and GPIO.
PI_PACKAGES=(python3-picamera2 python3-lgpio)

ROOT=${KIOSK_ROOT:-}
DRY=0
MODE=install
BUILD_VENV=1
CONFIG_SRC=$HERE/kiosk/configs/pi.toml

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

die() { echo "$PROG: $*" >&2; exit 1; }
step() { echo "==> $*"; }
note() { echo "    $*"; }

while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) DRY=1 ;;
        --uninstall) MODE=uninstall ;;
        --constraints) MODE=constraints ;;
        --skip-venv) BUILD_VENV=0 ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift ;;
        --root=*) ROOT=${1#--root=} ;;
        --config) [ $# -ge 2 ] || die "--config needs a file"; CONFIG_SRC=$2; shift ;;
        --config=*) CONFIG_SRC=${1#--config=} ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || die "--root $ROOT: no such directory"
    ROOT=$(cd "$ROOT" && pwd)
    [ "$ROOT" != / ] || ROOT=
fi

# ---------------------------------------------------------------------------------------------- helpers

# Runs a command that changes the system; --dry-run only prints it.
run() {
    echo "    + $*"
    [ "$DRY" = 1 ] || "$@"
}

# True when systemd manages this machine (not a chroot, a container without systemd, or --root).
systemd_running() {
    [ -z "$ROOT" ] && [ -d /run/systemd/system ]
}

# Numeric id of a group in the target's /etc/group (names would be looked up on the host under --root).
gid_of() {
    local gid
    gid=$(awk -F: -v name="$1" '$1 == name { print $3 }' "$ROOT/etc/group" 2>/dev/null)
    if [ -n "$gid" ]; then echo "$gid"; else echo "$1"; fi
}

uid_of() {
    local uid
    uid=$(awk -F: -v name="$1" '$1 == name { print $3 }' "$ROOT/etc/passwd" 2>/dev/null)
    if [ -n "$uid" ]; then echo "$uid"; else echo "$1"; fi
}

# install_file SRC DEST MODE [OWNER GROUP]: installs SRC as DEST unless DEST has that content already.
# Returns 0 when it changed something, 1 when DEST was up to date.
install_file() {
    local src=$1 dest=$2 mode=$3 owner=${4:-root} group=${5:-root}
    if [ -f "$ROOT$dest" ] && cmp -s "$src" "$ROOT$dest"; then
        note "$dest: up to date"
        return 1
    fi
    run install -D -m "$mode" -o "$(uid_of "$owner")" -g "$(gid_of "$group")" "$src" "$ROOT$dest"
}

# write_file DEST MODE < CONTENT: like install_file, with the content on standard input.
write_file() {
    local dest=$1 mode=$2 tmp status=0
    tmp=$(mktemp)
    cat > "$tmp"
    if [ "$DRY" = 1 ] && ! { [ -f "$ROOT$dest" ] && cmp -s "$tmp" "$ROOT$dest"; }; then
        sed 's/^/      | /' "$tmp"
    fi
    install_file "$tmp" "$dest" "$mode" || status=$?
    rm -f "$tmp"
    return "$status"
}

remove() {
    local path
    for path in "$@"; do
        if [ -e "$ROOT$path" ] || [ -L "$ROOT$path" ]; then
            run rm -rf "$ROOT$path"
        else
            note "$path: not there"
        fi
    done
}

# The printer section of a config as shell-safe words: connection vendor product host is_ip serial_port device.
printer_of() {
    "$SYSTEM_PYTHON" -s - "$1" <<'PY'
import ipaddress, sys, tomllib
path = sys.argv[1]
try:
    with open(path, "rb") as f:
        printer = tomllib.load(f).get("printer", {})
except (OSError, tomllib.TOMLDecodeError) as e:
    sys.exit(f"{path}: {e}")
def word(value):
    text = str(value if value is not None else "-")
    if not text or any(c.isspace() for c in text):
        sys.exit(f"{path}: printer: a value with spaces: {text!r}")
    return text
vendor, product = printer.get("usb_vendor"), printer.get("usb_product")
host = printer.get("host") or ""
try:
    is_ip = bool(host) and bool(ipaddress.ip_address(host))
except ValueError:
    is_ip = False
print(word(printer.get("connection", "simulated")),
      word(f"{vendor:04x}" if isinstance(vendor, int) else None),
      word(f"{product:04x}" if isinstance(product, int) else None),
      word(host or None), "yes" if is_ip else "no",
      word(printer.get("serial_port", "/dev/ttyUSB0")), word(printer.get("device", "/dev/usb/lp0")))
PY
}

# pip constraints from the system's Python: every distribution apt installed that carries compiled code
# (numpy, Pillow, simplejpeg, lgpio, ...) and the camera stack's own packages are pinned to the system's
# version, so pip either uses them or fails; OpenCV is never installed (its wheels bring their own numpy ABI).
system_constraints() {
    "$SYSTEM_PYTHON" -s - <<'PY'
import importlib.metadata as md, pathlib, re
CAMERA_STACK = {"numpy", "picamera2", "simplejpeg", "libcamera", "pidng", "piexif", "av", "pillow",
                "python-prctl", "v4l2-python3", "lgpio"}
OPENCV = ["opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"]
PEP440 = re.compile(r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?$", re.I)

def normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def compiled(dist):
    if any(str(f).endswith(".so") or ".so." in str(f) for f in (dist.files or [])):
        return True
    base = pathlib.Path(dist.locate_file(""))
    top = (dist.read_text("top_level.txt") or "").split() or [normal(dist.metadata["Name"]).replace("-", "_")]
    for name in top:
        package = base / name
        if package.is_dir() and next(package.rglob("*.so*"), None) is not None:
            return True
        if next(base.glob(f"{name}.*so"), None) is not None or next(base.glob(f"{name}.so*"), None):
            return True
    return False

pins, seen = [], set()
for dist in md.distributions():
    name = dist.metadata["Name"]
    if not name or normal(name) in seen:
        continue
    seen.add(normal(name))
    if normal(name) not in CAMERA_STACK and not compiled(dist):
        continue
    if PEP440.match(dist.version):
        pins.append(f"{normal(name)}=={dist.version}")
    else:
        pins.append(f"# {normal(name)} {dist.version}: not a PEP 440 version, left out")
print("# pip constraints made by install.sh from the system's own Python packages (apt): the venv sees them")
print("# (--system-site-packages) and pip must use them, never install its own copy beside them.")
print("\n".join(sorted(pins)))
print("# OpenCV is never installed on the kiosk: its wheels carry their own numpy ABI.")
print("\n".join(f"{name}<0" for name in OPENCV if name not in seen))
PY
}

# ---------------------------------------------------------------------------------------------- install

install_apt() {
    step "apt packages"
    if [ -n "$ROOT" ]; then
        note "--root: apt packages not installed (${APT_PACKAGES[*]} ${PI_PACKAGES[*]})"
        return
    fi
    local available=() missing=() package candidate
    for package in "${PI_PACKAGES[@]}"; do
        candidate=$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ { print $2 }') || candidate=
        if [ -n "$candidate" ] && [ "$candidate" != "(none)" ]; then
            available+=("$package")
        else
            missing+=("$package")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        note "skipped ${missing[*]}: not in this system's apt sources (Raspberry Pi OS only); no camera or GPIO here"
    fi
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends \
        "${APT_PACKAGES[@]}" "${available[@]}"
}

install_user() {
    step "the kiosk user and its device groups (sysusers)"
    install_file "$HERE/systemd/kiosk.sysusers.conf" "$SYSUSERS" 0644 || true
    if [ -n "$ROOT" ]; then
        run systemd-sysusers --root="$ROOT"
    else
        run systemd-sysusers
    fi
    if [ -d "$ROOT$DATA" ]; then
        note "$DATA: kept as it is"
    else
        run install -d -m 0750 -o "$(uid_of kiosk)" -g "$(gid_of kiosk)" "$ROOT$DATA"
    fi
}

install_venv() {
    step "the venv in $VENV (system site packages: apt's numpy, picamera2, libcamera, simplejpeg, lgpio)"
    if [ "$BUILD_VENV" = 0 ]; then
        note "--skip-venv: not built"
        return
    fi
    local pip=("$ROOT$VENV/bin/pip" install -q --disable-pip-version-check)
    run "$SYSTEM_PYTHON" -m venv --system-site-packages "$ROOT$VENV"
    step "pip constraints from the system's packages: $CONSTRAINTS"
    system_constraints | write_file "$CONSTRAINTS" 0644 || true
    if [ "$DRY" = 0 ]; then grep -v '^#' "$ROOT$CONSTRAINTS" | tr '\n' ' ' | sed 's/^/    pinned: /'; echo; fi
    step "Python packages (aarch64 wheels: dlib-bin, pygame-ce; face_recognition without its dlib build)"
    # setuptools < 81: face_recognition_models still imports pkg_resources.
    run "${pip[@]}" -c "$ROOT$CONSTRAINTS" -U pip "setuptools<81" wheel
    run "${pip[@]}" -c "$ROOT$CONSTRAINTS" -r "$HERE/requirements.txt"
    run "${pip[@]}" --no-deps face_recognition==1.3.0
    run "${pip[@]}" --no-deps --no-build-isolation --force-reinstall "$HERE"
    if [ "$DRY" = 0 ]; then
        "$ROOT$VENV/bin/python" - <<'PY'
import sys, numpy
inside = numpy.__file__.startswith(sys.prefix)
print(f"    numpy {numpy.__version__} from {numpy.__file__.rsplit('/numpy/', 1)[0]}"
      + (" (the venv's own: no system numpy)" if inside else " (the system's)"))
PY
    fi
}

install_config() {
    step "config $CONFIG and office secret $SECRET"
    if [ -e "$ROOT$CONFIG" ]; then
        note "$CONFIG: kept as it is"
    else
        [ -f "$CONFIG_SRC" ] || die "--config $CONFIG_SRC: no such file"
        install_file "$CONFIG_SRC" "$CONFIG" 0644 || true
        note "edit it: office, category pins, printer (then run install.sh again for the printer's udev rule)"
    fi
    if [ "$DRY" = 0 ] && [ -x "$ROOT$VENV/bin/python" ]; then
        # The kiosk's own validation: an error names the key (the service would exit 78 on it).
        "$ROOT$VENV/bin/python" -c '
import sys
from kiosk.config import ConfigError, load_config
try:
    load_config(sys.argv[1])
    print("    config: valid")
except (ConfigError, OSError) as e:
    print(f"    config: {e} (fix it before starting the kiosk)")' "$ROOT$CONFIG"
    fi
    # The per-office HMAC key of card numbers: every kiosk of one office needs the same file.
    if [ -e "$ROOT$SECRET" ]; then
        note "$SECRET: kept as it is"
    elif [ "$DRY" = 1 ]; then
        echo "    + write $ROOT$SECRET: 32 random bytes as hex, mode 0640 root:kiosk"
    else
        echo "    + write $ROOT$SECRET: 32 random bytes as hex, mode 0640 root:kiosk"
        (umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \n' > "$ROOT$SECRET.new"; echo >> "$ROOT$SECRET.new")
        chown "$(uid_of root):$(gid_of kiosk)" "$ROOT$SECRET.new"
        chmod 0640 "$ROOT$SECRET.new"
        mv "$ROOT$SECRET.new" "$ROOT$SECRET"
    fi
}

# The config the printer rule and drop-in are made from: the installed one, or (dry run) the one it would be.
active_config() {
    if [ -e "$ROOT$CONFIG" ]; then echo "$ROOT$CONFIG"; else echo "$CONFIG_SRC"; fi
}

install_printer_access() {
    local config connection vendor product host is_ip serial_port device words
    config=$(active_config)
    words=$(printer_of "$config") || die "cannot read the printer from $config"
    read -r connection vendor product host is_ip serial_port device <<< "$words"
    step "printer access ($connection printer in $CONFIG)"
    if [ "$connection" = usb ]; then
        if write_file "$UDEV_RULE" 0644 <<EOF
# Written by install.sh from $CONFIG ([printer] usb_vendor, usb_product): the kiosk user (group lp)
# opens the receipt printer through libusb. Run install.sh again after changing the printer.
SUBSYSTEM=="usb", ENV{DEVTYPE}=="usb_device", ATTR{idVendor}=="$vendor", ATTR{idProduct}=="$product", GROUP="lp", MODE="0660"
EOF
        then
            reload_udev "$vendor" "$product"
        fi
    else
        remove "$UDEV_RULE"
    fi
    case $connection in
        network)
            if [ "$is_ip" = yes ]; then
                write_file "$DROPIN" 0644 <<EOF || true
# Written by install.sh: the network printer at $host is the one address the kiosk may reach.
[Service]
RestrictAddressFamilies=AF_INET AF_INET6
IPAddressAllow=$host
EOF
            else
                note "printer host '$host' is a name: the kiosk may reach any address (give its IP address to limit it)"
                write_file "$DROPIN" 0644 <<EOF || true
# Written by install.sh: the network printer '$host' is a name, so no address filter (use its IP address).
[Service]
RestrictAddressFamilies=AF_INET AF_INET6
IPAddressAllow=any
EOF
            fi ;;
        serial|file)
            local node=$serial_port
            [ "$connection" = serial ] || node=$device
            write_file "$DROPIN" 0644 <<EOF || true
# Written by install.sh: the $connection printer's device node, beside the classes kiosk.service allows.
[Service]
DeviceAllow=$node rw
EOF
            ;;
        *) remove "$DROPIN" ;;
    esac
}

reload_udev() {
    if systemd_running && [ -S /run/udev/control ]; then
        run udevadm control --reload-rules
        run udevadm trigger --action=add --subsystem-match=usb --attr-match=idVendor="$1" --attr-match=idProduct="$2"
    else
        note "udev is not running here: the rule applies from the next boot"
    fi
}

install_unit() {
    step "the unit $UNIT, the polkit rule for USB sticks and journald limits $JOURNALD"
    install_file "$HERE/systemd/kiosk.service" "$UNIT" 0644 || true
    # udisks2 may mount, unmount and power off a removable USB drive for the kiosk user, and nothing else.
    install_file "$HERE/systemd/50-kiosk-udisks.rules" "$POLKIT_RULE" 0644 || true
    # Persistent, small: the journal must tell what happened before a power cut or a restart at night, and
    # the kiosk logs a few lines per ticket; 64 MB caps what it can ever take of the SD card.
    if write_file "$JOURNALD" 0644 <<'EOF'
# Written by install.sh (queue kiosk): a journal that survives power cuts but spares the SD card.
[Journal]
Storage=persistent
SystemMaxUse=64M
SystemMaxFileSize=8M
SystemKeepFree=512M
MaxRetentionSec=3month
RuntimeMaxUse=16M
SyncIntervalSec=5m
EOF
    then
        if systemd_running; then
            run systemctl restart systemd-journald.service
        fi
    fi
    enable_unit
}

enable_unit() {
    step "enable kiosk.service"
    if [ -n "$ROOT" ]; then
        run systemctl --root="$ROOT" enable kiosk.service
    elif systemd_running; then
        run systemctl daemon-reload
        run systemctl enable kiosk.service
        note "start it: systemctl start kiosk (or reboot); it takes tty1 from the login prompt"
    else
        note "systemd is not running here (chroot or container): enabled for the next boot, not started"
        run systemctl enable kiosk.service
    fi
}

do_install() {
    install_apt
    install_user
    install_venv
    install_config
    install_printer_access
    install_unit
    step "done"
    note "next: edit $CONFIG, then: sudo -u kiosk $VENV/bin/kiosk doctor --config $CONFIG"
}

# ---------------------------------------------------------------------------------------------- uninstall

do_uninstall() {
    step "stop and disable kiosk.service"
    if [ -n "$ROOT" ]; then
        [ ! -e "$ROOT$UNIT" ] || run systemctl --root="$ROOT" disable kiosk.service
    elif systemd_running; then
        [ ! -e "$UNIT" ] || run systemctl disable --now kiosk.service
    else
        [ ! -e "$UNIT" ] || run systemctl disable kiosk.service
    fi
    step "remove the unit, its drop-ins, the udev and polkit rules, the journald limits, the sysusers file and the venv"
    remove "$UNIT" "$DROPIN" "$UDEV_RULE" "$POLKIT_RULE" "$JOURNALD" "$SYSUSERS" "$VENV"
    if [ -d "$ROOT${DROPIN%/*}" ] && [ -z "$(ls -A "$ROOT${DROPIN%/*}")" ]; then run rmdir "$ROOT${DROPIN%/*}"; fi
    if [ -d "$ROOT$APP_DIR" ] && [ "$ROOT$APP_DIR" != "$HERE" ] && [ -z "$(ls -A "$ROOT$APP_DIR")" ]; then
        run rmdir "$ROOT$APP_DIR"
    fi
    if systemd_running; then
        run systemctl daemon-reload
        run systemctl restart systemd-journald.service
        run udevadm control --reload-rules
        run systemctl start getty@tty1.service
    fi
    step "kept"
    note "$DATA (the data), $ETC (config and office secret), the kiosk user and groups, the apt packages"
}

# ---------------------------------------------------------------------------------------------- main

if [ "$MODE" = constraints ]; then
    system_constraints
    exit 0
fi
if [ "$DRY" = 1 ]; then
    echo "$PROG: dry run: every step is printed, nothing is changed"
elif [ "$(id -u)" != 0 ]; then
    die "run as root (sudo ./$PROG); --dry-run shows the steps without root"
fi
if [ "$MODE" = uninstall ]; then do_uninstall; else do_install; fi
