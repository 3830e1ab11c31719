"""Terminal commands an admin runs: lead look-ups and stats, outbox, privacy, doctor, digest."""
