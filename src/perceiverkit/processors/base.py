"""What a preprocessor hands to the encoder and the decoder: :class:`~perceiverkit.interfaces.Preprocessed`."""

from ..interfaces import Preprocessed

__all__ = ["Preprocessed"]
