"""Slack adapter: Block Kit rendering of the neutral messages, and (later) the Bolt transport."""
