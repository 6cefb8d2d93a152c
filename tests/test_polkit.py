"""systemd/50-kiosk-udisks.rules: the polkit rule, run by a JavaScript engine (node) with a stand-in ``polkit``
object: it allows the `kiosk` user to mount, unmount and power off removable USB drives, and nothing else to
anybody. Skipped where node is absent (polkit itself needs a system bus and a running polkitd)."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest

RULE = Path(__file__).resolve().parents[1] / "systemd" / "50-kiosk-udisks.rules"

# polkit's own Result values (polkit(8)): NOT_HANDLED is null, the others strings.
HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const [rulePath, casesJson] = process.argv.slice(-2);
const rules = [];
const polkit = {
  Result: {NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
           AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null},
  addRule: (f) => rules.push(f), addAdminRule: () => {}, log: () => {}, spawn: () => { throw "no spawn"; },
};
vm.runInNewContext(fs.readFileSync(rulePath, "utf8"), {polkit}, {filename: rulePath});
const out = JSON.parse(casesJson).map(([id, user, details]) => {
  const action = {id, lookup: (k) => details[k]};
  const subject = {user, pid: 1234, groups: [user], seat: "", session: "", local: false, active: false,
                   isInGroup: (g) => g === user, isInNetGroup: () => false};
  for (const rule of rules) {
    const r = rule(action, subject);
    if (r !== undefined && r !== null) return r;
  }
  return null;
});
process.stdout.write(JSON.stringify({rules: rules.length, results: out}));
"""

USB = {"drive.removable": "true", "drive.removable.bus": "usb", "device": "/dev/sdb1"}
MOUNT = "org.freedesktop.udisks2.filesystem-mount"


def run_rule(cases):
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("no JavaScript engine (node) to run the polkit rule with")
    proc = subprocess.run([node, "-e", HARNESS, "--", str(RULE), json.dumps(cases)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["rules"] == 1
    return out["results"]


def test_the_kiosk_user_may_mount_unmount_and_power_off_usb_sticks():
    actions = [MOUNT, "org.freedesktop.udisks2.filesystem-mount-other-seat",
               "org.freedesktop.udisks2.filesystem-unmount-others", "org.freedesktop.udisks2.power-off-drive",
               "org.freedesktop.udisks2.power-off-drive-other-seat"]
    assert run_rule([[a, "kiosk", USB] for a in actions]) == ["yes"] * len(actions)


@pytest.mark.parametrize("action, user, details", [
    (MOUNT, "pi", USB),                                                        # another user
    (MOUNT, "root", USB),
    (MOUNT, "kiosk2", USB),
    (MOUNT, "kiosk", {**USB, "drive.removable.bus": "sdio"}),                  # an SD card reader
    (MOUNT, "kiosk", {"device": "/dev/mmcblk0p2"}),                            # a system disk: no removable
    (MOUNT, "kiosk", {**USB, "drive.removable": "false"}),
    ("org.freedesktop.udisks2.filesystem-mount-system", "kiosk", USB),
    ("org.freedesktop.udisks2.modify-device", "kiosk", USB),                  # formatting
    ("org.freedesktop.udisks2.encrypted-unlock", "kiosk", USB),
    ("org.freedesktop.udisks2.loop-setup", "kiosk", USB),
    ("org.freedesktop.udisks2.power-off-drive-system", "kiosk", USB),
    ("org.freedesktop.udisks2.filesystem-fstab", "kiosk", USB),
    ("org.freedesktop.login1.reboot", "kiosk", {}),
    ("constructor", "kiosk", USB),                                             # no prototype tricks
])
def test_nothing_else_and_nobody_else(action, user, details):
    assert run_rule([[action, user, details]]) == [None]
