"""Enchant Worker: the self-hosted GPU backend of Novel Enchant."""

__version__ = "0.1.0"
