"""``features``: move the encoder's intermediate feature maps away from the clean photo's."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from cloak.objectives.base import register
from cloak.objectives.push import Push

if TYPE_CHECKING:
    from cloak.encoding import EncodeMode


@register
class Features(Push):
    """Like ``push``, on the encoder's feature maps (:meth:`AutoEncoder.features`) summed.

    Normalised by the clean feature maps' total energy. No decoder needed.
    """

    name = "features"
    mode: ClassVar[EncodeMode] = "features"
