"""smemu: a local, SageMaker-compatible model hosting emulator."""

__version__ = "0.1.0"
