"""The console's own refusals: one that belongs next to one field of the page."""
from __future__ import annotations


class FieldError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message
