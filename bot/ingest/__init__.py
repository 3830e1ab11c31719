"""Taking events in: webhooks, signatures, parsing, the writer process, group commit, the
pipeline, identities."""
