"""Cloak: protect photos against AI editing by disrupting latent-diffusion image encoders.

Importing this package is cheap and has no side effects; the engine lives in
:mod:`cloak.engine`, the encoders in :mod:`cloak.models`.
"""

__version__ = "0.1.0"
