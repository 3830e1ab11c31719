"""Delivering what the core decided, once, through each platform's transport."""
