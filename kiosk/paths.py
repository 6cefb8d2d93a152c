"""Where the kiosk finds its shipped files (fonts), in a source checkout and when installed."""
import sys
from pathlib import Path


def _assets_dir() -> Path:
    checkout = Path(__file__).resolve().parent.parent / "assets"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "queue-kiosk" / "assets"


ASSETS = _assets_dir()
FONT_REGULAR = ASSETS / "DejaVuSans.ttf"
FONT_BOLD = ASSETS / "DejaVuSans-Bold.ttf"
