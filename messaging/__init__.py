"""What to send and when: templates, policy, outbox and inbox, queue notifications (reply router to come)."""


def init_app(app) -> None:
    from . import notify

    notify.init_app(app)
