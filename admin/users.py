"""Settings: users (placeholder: being written)."""
