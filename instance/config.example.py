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

# Several processes (gunicorn workers, scheduler, modem gateways) sharing displays:
# SOCKETIO_MESSAGE_QUEUE = "redis://127.0.0.1:6379/0"
