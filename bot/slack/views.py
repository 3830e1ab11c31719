"""Modals: the reason a rep disqualifies a lead."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import (
    ContextBlock,
    InputBlock,
    Option,
    PlainTextInputElement,
    RadioButtonsElement,
)
from slack_sdk.models.views import View

from bot.chat.messages import DisqualifyReason
from bot.slack.blocks import SECTION_MAX, clip, mrkdwn, section

DISQUALIFY_CALLBACK = "lead_disqualify_modal"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
NOTE_BLOCK = "note"
NOTE_ACTION = "note"
NOTE_MAX = 500  # a few sentences; it is stored with the feedback row


def reason_options() -> list[Option]:
    """One option per ``DisqualifyReason``, generated so a new reason appears by itself."""
    return [Option(value=r.value, text=r.value.capitalize()) for r in DisqualifyReason]


def disqualify_modal(*, lead_id: str, lead_name: str, private_metadata: str) -> dict[str, Any]:
    """The ``view`` for ``views.open``. The submission carries the reason at
    ``state.values[REASON_BLOCK][REASON_ACTION].selected_option.value`` and the optional
    note at ``state.values[NOTE_BLOCK][NOTE_ACTION].value``; ``private_metadata`` comes
    back unchanged (the caller puts the lead id and the alert's channel and ts there)."""
    view = View(
        type="modal",
        callback_id=DISQUALIFY_CALLBACK,
        title="Disqualify lead",
        submit="Disqualify",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=[
            section(f"Why is this lead not a fit?\n{clip(lead_name, SECTION_MAX - 100)}"),
            ContextBlock(elements=[mrkdwn(f"Lead id {clip(lead_id, 200)}")]),
            InputBlock(
                block_id=REASON_BLOCK,
                label="Reason",
                element=RadioButtonsElement(action_id=REASON_ACTION, options=reason_options()),
            ),
            InputBlock(
                block_id=NOTE_BLOCK,
                label="Note",
                optional=True,
                element=PlainTextInputElement(
                    action_id=NOTE_ACTION, multiline=True, max_length=NOTE_MAX
                ),
            ),
        ],
    )
    return view.to_dict()
