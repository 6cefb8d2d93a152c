"""The office side of USB sync (issue 12): ``kiosk-office``."""
