"""medsift: from a raw medical-imaging folder to audited data, patient-level splits and honest models."""

__version__ = "0.1.0"
