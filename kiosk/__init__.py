"""Kiosk check-in screens and the check-in API (issue: kiosk check-in). Not built yet."""
