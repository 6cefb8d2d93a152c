"""Device adapters, one module per device. Never imports ``kiosk``: the application depends on these, not back."""
