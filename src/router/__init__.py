"""router: a multi-model LLM routing gateway."""

__version__ = "0.1.0"
