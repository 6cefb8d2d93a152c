"""The dependency rules of docs/ARCHITECTURE.md, checked on the source (imports anywhere in a module)."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEVICE_LIBRARIES = {"pygame", "gpiozero", "picamera2", "escpos", "tinydb", "face_recognition", "dlib", "cv2"}


def imported(path):
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", ["states.py", "views.py", "tickets.py", "consent.py", "index.py"])
def test_pure_logic_imports_no_device_library(module):
    assert not imported(REPO / "kiosk" / module) & DEVICE_LIBRARIES


@pytest.mark.parametrize("path", sorted((REPO / "hardware").glob("*.py")), ids=lambda p: p.name)
def test_hardware_never_imports_the_application(path):
    assert "kiosk" not in imported(path)


def test_only_the_composition_root_imports_real_device_classes():
    """Replay may use the file camera; the real devices are built in kiosk/app.py alone."""
    devices = {"EscposPrinter", "SimulatedPrinter", "Picamera2Camera", "OpenCvCamera", "GpioButtons"}
    for path in sorted((REPO / "kiosk").glob("*.py")):
        if path.name == "app.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hardware"):
                named = {a.name for a in node.names} & devices
                assert not named, f"{path.name} imports {named}"
