from datetime import datetime, timezone

# A Monday morning, UTC. Tests move the clock by hand from here.
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
