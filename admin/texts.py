"""Settings: texts (placeholder: being written)."""
