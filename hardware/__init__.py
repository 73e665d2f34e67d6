"""Modem gateway over python-gsmmodem, the virtual modem, the ticket printer (issue: hardware). Not built yet."""
