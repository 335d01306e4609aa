"""Pricing: model matching, price books and the custom-models API (see README.md)."""
