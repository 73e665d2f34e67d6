# Copy to instance/config.py and change what this installation needs. Environment variables
# (DATABASE_URL, SECRET_KEY, SOCKETIO_MESSAGE_QUEUE, SEED_TIMEZONE, SEED_COUNTRY) win over this file.

# Where the data lives. Default: SQLite in this folder (instance/seed.db).
# SQLALCHEMY_DATABASE_URI = "postgresql://seed@127.0.0.1:5432/seed"

# The demo branch created on first start of an empty database.
# DEFAULT_BRANCH_NAME = "City Office"
# DEFAULT_TIMEZONE = "Asia/Tbilisi"
# DEFAULT_COUNTRY = "GE"        # phone numbers typed without +code are read as this country's
# DEFAULT_LANGUAGE = "ka"       # en, ja or ka

# Wait estimates: median of the last N completions within the window; fewer than MIN samples
# falls back to each service's configured average minutes.
# ESTIMATE_SAMPLE_SIZE = 10
# ESTIMATE_WINDOW_HOURS = 8
# ESTIMATE_MIN_SAMPLES = 3

# Several processes (gunicorn workers, scheduler, modem gateways) on one Redis: it carries the
# displays' messages between processes and the shared rate limits (README, "Deploying").
# REDIS_URL = "redis://127.0.0.1:6379/0"
# One active scheduler and one process per modem: "auto" (an advisory lock on PostgreSQL, a lock
# file in instance/ on SQLite) or "redis"; a standby takes over within about LEADER_LEASE_SECONDS.
# LEADER_LOCK = "auto"
# LEADER_RETRY_SECONDS = 5.0
# LEADER_LEASE_SECONDS = 15.0

# Where customers reach Seed: links in texts are built on it, never on a request's Host header.
# PUBLIC_URL = "https://queue.example.org"

# Nightly backups kept (0: none), where, and after what time of day (README, "Operating").
# BACKUP_KEEP = 14
# BACKUP_DIR = "/var/backups/seed"
# BACKUP_TIME = "03:00"
