"""The core's version: what ``agencystack --version``, ``components list`` and backup manifests report (the package
re-exports it as ``agencystack.__version__``)."""

__version__ = "0.1.0"
