"""Event detectors: one module each, every one a pure function of (state, sample, settings).

``base.py`` describes the contract they share.
"""
