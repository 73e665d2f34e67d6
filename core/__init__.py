"""Seed's core: configuration, extensions, models, the queue engine, appointments, events, auth,
the branch scope rule, the service layer and the CLI. It imports no other package of ours (the
app factory in app.py puts them together; tests/test_layering.py holds the rule)."""
