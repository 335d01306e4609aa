"""Datasets, dataset items, runs and experiments (see README.md)."""
