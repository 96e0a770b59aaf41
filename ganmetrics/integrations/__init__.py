"""Adapters to other frameworks (imported on use: each needs its framework installed)."""
