"""Packaging for the face-recognition queue-ticket kiosk.

dlib is not listed here on purpose: it comes from the prebuilt ``dlib-bin`` wheel and
face_recognition is installed with ``--no-deps`` (see the Makefile), so installing the
kiosk never starts a 20-minute dlib compile.
"""
from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="queue-kiosk",
    version="0.1.0",
    description="Touchless face-recognition queue-ticket kiosk for one-stop administrative offices",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["kiosk", "kiosk.*", "hardware", "hardware.*"]),
    package_data={"kiosk": ["configs/*.toml"]},
    data_files=[("share/queue-kiosk/assets", ["assets/DejaVuSans.ttf", "assets/DejaVuSans-Bold.ttf",
                                               "assets/LICENSE-DejaVu.txt"]),
                # the voice clips (`make voice` records them; kiosk/voice.py)
                ("share/queue-kiosk/assets/voice", sorted(str(p) for p in Path("assets/voice").iterdir()))],
    install_requires=[
        "numpy>=1.24,<3",
        "Pillow>=9.4",
        "pygame-ce>=2.5.8,<2.6",
        "tinydb>=4.8,<5",
        "gpiozero>=2.0",
        "python-escpos[usb,serial]>=3.1",
        "zxing-cpp>=2.2",
        "qrcode>=7.4",
        "PyNaCl>=1.5,<2",
        "cbor2>=5.4,<7",
        "tomlkit>=0.12,<1",
        "pyudev>=0.24,<1",
        "dbus-fast>=2.0",
    ],
    extras_require={"test": ["pytest>=8"],
                    # kiosk-office (kiosk/office/): PostgreSQL and the report's charts; not needed on a kiosk
                    "office": ["psycopg[binary]>=3.1,<4", "matplotlib>=3.8,<4", "bottle>=0.13,<0.14"]},
    entry_points={"console_scripts": ["kiosk = kiosk.__main__:main", "kiosk-office = kiosk.office.cli:main"]},
)
