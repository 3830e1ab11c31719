"""The leadbot application: webhooks, pipeline, alerts, chat adapters, scheduler and CLI."""
