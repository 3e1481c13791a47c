"""layervenv: a writable Python layer on top of a read-only software stack."""

__version__ = "0.1.0"
