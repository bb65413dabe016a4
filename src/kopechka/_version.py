"""The package version: the one source read by the build backend and by ``kopechka.__version__``."""

__version__ = "0.3.0"
