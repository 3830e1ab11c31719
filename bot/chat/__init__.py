"""The chat-agnostic core: commands, button actions, neutral messages, the alert policy,
routing, look-ups, plain text."""
