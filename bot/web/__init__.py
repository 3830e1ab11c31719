"""The HTTP surface shared by every route: app keys, health/readiness/metrics, common answers."""
