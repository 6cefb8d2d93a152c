#!/usr/bin/env bash
# The kiosk on an emulated Raspberry Pi OS: an arm64 Debian Bookworm root (debootstrap) run under
# qemu-user-static, in which install.sh runs as on a Pi, then the checks a technician would make:
# the venv from aarch64 wheels on the system's numpy, pygame's KMS/DRM driver, a face encoded, `kiosk doctor`
# as the kiosk user, and a picamera2 that fails on import with numpy's ValueError.
#
#   sudo benchmarks/emulated_pi.sh          (slow: 10-30 minutes; not part of `make test`)
#
# The debootstrap root is cached in $KIOSK_EMULATED_CACHE (default /var/cache/kiosk-emulated-pi) and reused;
# each run installs into a fresh copy of it. Raspberry Pi OS's own packages (picamera2, lgpio) are not in
# Debian: install.sh skips them, saying so. Needs root, binfmt_misc and the Debian and PyPI registries.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${KIOSK_EMULATED_CACHE:-/var/cache/kiosk-emulated-pi}
FACES=${FACES:-$REPO/../shared/data/faces}
BASE=$CACHE/rootfs
RUN=$CACHE/run
APP=/opt/queue-kiosk
FAILED=0

say() { echo "== $*"; }
check() {   # check NAME COMMAND...: one line, OK or FAIL, the command's output indented below
    local name=$1 output status=0
    shift
    output=$("$@" 2>&1) || status=$?
    if [ "$status" = 0 ]; then echo "OK   $name"; else echo "FAIL $name (exit $status)"; FAILED=1; fi
    [ -z "$output" ] || printf '     %s\n' "${output//$'\n'/$'\n'     }"
}
in_root() {  # runs a command in the emulated Pi with a clean environment
    chroot "$RUN" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/pip-host-ca.crt PYGAME_HIDE_SUPPORT_PROMPT=1 "$@"
}
# shellcheck disable=SC2329  # called through check()
as_kiosk() {
    in_root runuser -u kiosk -- /usr/bin/env HOME=/var/lib/kiosk PYGAME_HIDE_SUPPORT_PROMPT=1 "$@"
}

[ "$(id -u)" = 0 ] || { echo "emulated_pi.sh: run as root (chroot, mounts, apt)" >&2; exit 1; }
START=$(date +%s)

say "qemu-user-static, binfmt_misc, debootstrap"
if ! command -v qemu-aarch64-static >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-user-static binfmt-support debootstrap >/dev/null
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64

say "arm64 Debian Bookworm root in $BASE"
mkdir -p "$CACHE/apt-archives/partial" "$CACHE/pip"
if [ ! -x "$BASE/bin/sh" ]; then
    rm -rf "$BASE.partial"
    debootstrap --arch=arm64 bookworm "$BASE.partial" > "$CACHE/debootstrap.log"
    mv "$BASE.partial" "$BASE"
else
    echo "   reused (made $(stat -c %y "$BASE/var/lib/dpkg/status" | cut -d. -f1))"
fi

say "a fresh copy with the checkout in $APP"
cleanup() {
    local m
    for m in mnt/faces root/.cache/pip var/cache/apt/archives dev/pts dev sys proc; do
        ! mountpoint -q "$RUN/$m" || umount -l "$RUN/$m"
    done
}
trap cleanup EXIT
cleanup
rm -rf "$RUN"
cp -a "$BASE" "$RUN"
mount -t proc proc "$RUN/proc"
mount -t sysfs sysfs "$RUN/sys"
mount --bind /dev "$RUN/dev"
mount --bind /dev/pts "$RUN/dev/pts"
mount --bind "$CACHE/apt-archives" "$RUN/var/cache/apt/archives"
mkdir -p "$RUN/root/.cache/pip" "$RUN/mnt/faces" "$RUN$APP"
mount --bind "$CACHE/pip" "$RUN/root/.cache/pip"
cp /etc/resolv.conf "$RUN/etc/resolv.conf"
# pip in the emulated Pi trusts what this machine trusts.
cp /etc/ssl/certs/ca-certificates.crt "$RUN/etc/pip-host-ca.crt"
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$RUN$APP"
if [ -d "$FACES/dev" ]; then
    mount --bind "$FACES" "$RUN/mnt/faces"
    mount -o remount,bind,ro "$RUN/mnt/faces"
fi

FILTER="^(Selecting|Preparing|Unpacking|Setting up|Processing|Created symlink|\(Reading database)"
say "sudo ./install.sh (in the emulated Pi)"
T0=$(date +%s)
in_root "$APP/install.sh" 2>&1 | grep --line-buffered -v -E "$FILTER" | sed 's/^/   /'
echo "   install.sh took $(( $(date +%s) - T0 )) s"

# What install.sh put on the system, file by file (content, mode, owner), for the second run to compare.
installed_state() {
    in_root sh -c 'find /etc/kiosk /etc/sysusers.d/kiosk.conf /etc/udev/rules.d/70-kiosk-printer.rules \
        /etc/systemd/system/kiosk.service /etc/systemd/system/multi-user.target.wants/kiosk.service \
        /etc/systemd/journald.conf.d/kiosk.conf /etc/polkit-1/rules.d/50-kiosk-udisks.rules /var/lib/kiosk \
        /etc/passwd /etc/group \
        /opt/queue-kiosk/.venv/system-constraints.txt -printf "%p %m %u %g %l\n" | sort
        find /etc/kiosk /etc/sysusers.d /etc/udev/rules.d /etc/systemd/journald.conf.d /etc/polkit-1/rules.d \
        /etc/passwd /etc/group \
        -type f -exec sha256sum {} + | sort
        /opt/queue-kiosk/.venv/bin/pip list --format=freeze 2>/dev/null | grep -v -i "^queue-kiosk"'
}
BEFORE=$(installed_state)
say "sudo ./install.sh again (idempotent: the same files, the same packages)"
T0=$(date +%s)
in_root "$APP/install.sh" 2>&1 | grep --line-buffered -E "^==>|kept|up to date|pinned" | sed 's/^/   /'
echo "   the second run took $(( $(date +%s) - T0 )) s"
AFTER=$(installed_state)

say "checks"
# shellcheck disable=SC2329
same_files() { diff <(echo "$BEFORE") <(echo "$AFTER") && echo "$(wc -l <<< "$AFTER") files, modes and packages compared"; }
check "the second install.sh left every file and package as the first made it" same_files
# shellcheck disable=SC2016  # $PRETTY_NAME is expanded inside the emulated Pi
check "aarch64 Debian, Python $(in_root python3 -c 'import platform; print(platform.python_version())')" \
    in_root sh -c 'uname -m; . /etc/os-release; echo "$PRETTY_NAME"'
check "the venv's compiled packages are aarch64 wheels" in_root sh -c \
    "grep -h '^Tag:' $APP/.venv/lib/python3.11/site-packages/*.dist-info/WHEEL | sort -u"
check "numpy is the system's (apt) one, no second numpy in the venv" in_root "$APP/.venv/bin/python" -c '
import sys, numpy, importlib.metadata as md
venv = [d.metadata["Name"] for d in md.distributions(path=[p for p in sys.path if p.startswith(sys.prefix)])]
print("numpy", numpy.__version__, "from", numpy.__file__)
assert not numpy.__file__.startswith(sys.prefix) and "numpy" not in venv
assert not any(n.lower().startswith("opencv") for n in venv)
print("in the venv:", ", ".join(sorted(venv, key=str.lower)))'
check "pygame-ce's SDL lists kmsdrm among its video drivers" in_root "$APP/.venv/bin/python" -c '
import ctypes, glob, os, pygame
# pygame has no call for the compiled-in driver list: ask the SDL library its wheel bundles (the one loaded).
libs = os.path.join(os.path.dirname(pygame.__file__), os.pardir, "pygame_ce.libs", "libSDL2-*")
sdl = ctypes.CDLL(glob.glob(libs)[0])
sdl.SDL_GetVideoDriver.restype = ctypes.c_char_p
drivers = [sdl.SDL_GetVideoDriver(i).decode() for i in range(sdl.SDL_GetNumVideoDrivers())]
print("pygame", pygame.version.ver, "SDL", pygame.version.SDL, "video drivers:", " ".join(drivers))
assert "kmsdrm" in [d.lower() for d in drivers]'
PHOTO=$(find "$RUN/mnt/faces/dev" -type f -iname '*.jpg' 2>/dev/null | sort | head -1)
if [ -n "$PHOTO" ]; then
    check "the face engine encodes a face (${PHOTO#"$RUN/mnt/faces/"})" in_root "$APP/.venv/bin/python" -c '
import sys, time, numpy as np
from PIL import Image
from kiosk.faces import FaceRecognitionEngine
image = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
t = time.perf_counter(); engine = FaceRecognitionEngine(); load = time.perf_counter() - t
t = time.perf_counter(); boxes = engine.detect(image, 1); encoding = engine.encode(image, boxes[0])
took = time.perf_counter() - t
print(f"{len(boxes)} face at {boxes[0]}, {encoding.shape[0]} numbers ({encoding.dtype}), norm {np.linalg.norm(encoding):.3f}; "
      f"models loaded in {load:.1f} s, detect + encode {took:.1f} s under qemu")
assert encoding.shape == (128,) and np.isfinite(encoding).all()' "${PHOTO#"$RUN"}"
else
    echo "SKIP the face engine: no photos in $FACES/dev"
fi

# The doctor with the simulation's camera and printer: a folder of photos, tickets as files. There are no
# GPIO pins, no panel and no running udisks2 in an emulated Pi: the buttons and usb lines may fail, and the
# display line may fail to open the panel, but never for want of the kmsdrm driver; every other line must be
# OK, and no traceback.
FOLDER=$(dirname "${PHOTO:-$RUN/tmp/none/x}")
mkdir -p "$RUN/tmp/none"
sed -e "s|^kind = \"picamera2\"|kind = \"files\"\nfolder = \"${FOLDER#"$RUN"}\"|" \
    -e 's|^connection = "usb".*|connection = "simulated"\nout_dir = "/var/lib/kiosk/printed"|' \
    "$RUN/etc/kiosk/kiosk.toml" > "$RUN/etc/kiosk/emulated.toml"
# shellcheck disable=SC2329
doctor_simulated() {
    local output status=0
    output=$(as_kiosk "$APP/.venv/bin/kiosk" doctor --config /etc/kiosk/emulated.toml 2>&1) || status=$?
    echo "$output"
    echo "(doctor exit status $status)"
    ! grep -q "Traceback" <<< "$output" && ! grep -q "no 'kmsdrm' video driver" <<< "$output" \
        && ! grep -E "^FAIL" <<< "$output" | grep -v -q -E "^FAIL +(buttons|display|usb) "
}
check "kiosk doctor as the kiosk user (groups: $(in_root id -nG kiosk)), simulated camera and printer" \
    doctor_simulated

# The unit's system-call filter on aarch64: qemu prints every call the emulated program makes (QEMU_STRACE).
# shellcheck disable=SC2329
syscalls_of() {  # the members of systemd's syscall groups, nested groups expanded
    local group word
    for group in "$@"; do
        systemd-analyze syscall-filter "$group" | tail -n +2 | sed 's/^ *//' | while read -r word; do
            case $word in ''|'#'*) ;; @*) syscalls_of "$word" ;; *) echo "$word" ;; esac
        done
    done | sort -u
}
# shellcheck disable=SC2329
syscalls_allowed() {
    as_kiosk QEMU_STRACE=1 "$APP/.venv/bin/kiosk" doctor --config /etc/kiosk/emulated.toml \
        >/dev/null 2> "$RUN/tmp/doctor.strace" || true
    local used outside denied
    used=$(grep -oE '^[0-9]+ [a-z_0-9]+\(' "$RUN/tmp/doctor.strace" | sed 's/^[0-9]* //; s/($//' | sort -u)
    outside=$(comm -23 <(echo "$used") <(syscalls_of @system-service) | tr '\n' ' ')
    # setpriority: taken away with @resources, given back by the unit (USB sync children under nice).
    denied=$(comm -12 <(echo "$used") <(syscalls_of @privileged @resources | grep -vx setpriority) | tr '\n' ' ')
    echo "$(wc -l <<< "$used") system calls; outside @system-service: ${outside:-none}; taken away by ~@privileged @resources: ${denied:-none}"
    [ -z "$outside" ] && { [ -z "$denied" ] || [ "$denied" = "mbind " ]; }
}
command -v systemd-analyze >/dev/null && \
    check "the doctor's aarch64 system calls pass the unit's filter (@system-service, ~@privileged @resources)" \
        syscalls_allowed

# Raspberry Pi OS's picamera2 with a numpy it was not built for: simplejpeg raises ValueError on import.
mkdir -p "$RUN/tmp/standin/picamera2"
cat > "$RUN/tmp/standin/picamera2/__init__.py" <<'EOF'
raise ValueError("numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C header, got 88 from PyObject")
EOF
chmod -R a+rX "$RUN/tmp/standin"
# shellcheck disable=SC2329
doctor_with_broken_camera() {
    local output status=0
    output=$(as_kiosk PYTHONPATH=/tmp/standin "$APP/.venv/bin/kiosk" doctor --config /etc/kiosk/emulated-picamera.toml 2>&1) \
        || status=$?
    echo "$output"
    echo "(doctor exit status $status)"
    ! grep -q "Traceback" <<< "$output" && grep -i "camera" <<< "$output" | grep -q -i "valueerror\|numpy\|fault\|FAIL"
}
sed -e 's/^connection = "usb".*/connection = "simulated"\nout_dir = "\/var\/lib\/kiosk\/printed"/' \
    "$RUN/etc/kiosk/kiosk.toml" > "$RUN/etc/kiosk/emulated-picamera.toml"
check "a picamera2 raising numpy's ValueError on import is a camera fault, not a traceback" doctor_with_broken_camera

echo "== $( [ "$FAILED" = 0 ] && echo "all checks passed" || echo "some checks FAILED" ) in $(( $(date +%s) - START )) s"
exit "$FAILED"
