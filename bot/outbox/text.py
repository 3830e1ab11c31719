"""Every outbox message as plain text: what the console prints, and the fallback of any
platform that shows no rich layout. Lead data goes through ``bot.chat.plain.clean``."""

from __future__ import annotations

from bot.chat.plain import clean, render_alert
from bot.digest.plain import render_text
from bot.outbox.messages import AlertMessage, DigestMessage, Message, ProposalMessage


def plain_text(message: Message) -> str:
    """The whole message as text, one clean line per line."""
    if isinstance(message, AlertMessage):
        return render_alert(message)
    if isinstance(message, DigestMessage):
        if message.digest is not None:
            return render_text(message.digest)
        assert message.legacy is not None
        body = message.legacy.plain
    elif isinstance(message, ProposalMessage) and message.decision:
        body = f"{message.text}\n{message.decision}"
    else:
        body = message.text
    return "\n".join(clean(line) for line in body.splitlines())
