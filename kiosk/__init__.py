"""The queue-ticket kiosk application: pure logic first (states, tickets, index), wiring last (app)."""
