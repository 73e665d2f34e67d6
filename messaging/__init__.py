"""What to send and when: templates, policy, outbox and inbox, queue notifications (reply router to come)."""


def init_app(app) -> None:
    from . import metrics, notify

    notify.init_app(app)
    metrics.init_app(app)  # the outbox, the modems and the quarantine on /metrics (core/metrics.py)
