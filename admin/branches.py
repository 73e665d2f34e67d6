"""Settings: branches (placeholder: being written)."""
