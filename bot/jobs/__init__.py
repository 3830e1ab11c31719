"""Scheduled work: the scheduler, SLA follow-up, the decay sweep."""
