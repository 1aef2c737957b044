"""Sessions, their events, cart lines and close outcomes."""
