"""Manager digests: content (``content.build_digest``), who may ask (``access``), and the
renderers: plain text, a PNG chart and Slack Block Kit."""
