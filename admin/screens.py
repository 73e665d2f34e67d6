"""Settings: screens (placeholder: being written)."""
