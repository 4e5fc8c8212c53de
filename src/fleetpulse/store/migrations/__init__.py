"""Versioned schema migrations of the store backends, shipped as package data."""
