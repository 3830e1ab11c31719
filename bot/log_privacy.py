"""No lead's e-mail in the log, at any level: the chat SDKs log whole request and response
bodies (alert texts with e-mails) at DEBUG. A module of its own so every ``leadbot`` command
calls it first without importing the privacy commands."""

from __future__ import annotations

import logging

CHAT_LOGGERS = ("slack_sdk", "slack_bolt", "microsoft_agents")


def quiet_chat_logs() -> None:
    """Hold the chat SDKs' loggers at INFO unless someone set them on purpose, so that
    ``LEADBOT_LOG_LEVEL=DEBUG`` never writes a lead's e-mail (``storage.engine`` does the
    same for the database driver)."""
    for name in CHAT_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
