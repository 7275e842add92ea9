"""Specific exceptions. Each message shows the bad value and what was expected."""


class MedsiftError(Exception):
    """Base of every error medsift raises on purpose (the CLI prints these without a traceback)."""


class ManifestError(MedsiftError):
    """The manifest table breaks its schema."""


class FormatError(MedsiftError):
    """A file does not follow the format it claims (VOC, COCO, YOLO, mask, DICOM, ...)."""


class LayoutError(MedsiftError):
    """A source folder does not look like the layout asked for."""


class ConfigError(MedsiftError):
    """A configuration value or CLI option is invalid."""


class LeakageError(MedsiftError):
    """A patient or a near-duplicate pair sits in more than one split."""
