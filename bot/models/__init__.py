"""Scoring model versions: the live model, learning from feedback, A/B tests, rescoring, CSV
learn/score, band edges."""
