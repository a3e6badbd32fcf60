"""The toolkit's version: the single source for the package metadata and every JSON report."""

__version__ = "0.2.0"
