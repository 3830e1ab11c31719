"""Microsoft Teams adapter: Adaptive Card renderers, transport and handlers."""
