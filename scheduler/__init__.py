"""APScheduler setup and periodic jobs; started by run.py, never by create_app (issue: messaging). Not built yet."""
