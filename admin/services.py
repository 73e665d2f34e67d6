"""Settings: services (placeholder: being written)."""
