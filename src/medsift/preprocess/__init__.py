"""medsift.preprocess: windowing, normalisation, resampling, skull removal, enhancement, 2.5D stacks,
augmentation and the memory-mapped training cache.

Import the submodules directly (``from medsift.preprocess.cache import build_cache``); this package
imports nothing heavy itself. The config is re-exported for convenience.
"""

from medsift.preprocess.config import Enhance, Normalize, PreprocessConfig

__all__ = ["Enhance", "Normalize", "PreprocessConfig"]
