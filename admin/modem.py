"""Settings: modem (placeholder: being written)."""
