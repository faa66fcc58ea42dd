"""Components: what one latent state emits (see :mod:`fastem.components.base`)."""

from .base import Component

__all__ = ["Component"]
