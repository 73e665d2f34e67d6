"""Settings: counters (placeholder: being written)."""
