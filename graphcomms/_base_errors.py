"""The root of graphcomms's exceptions and the refusal the models raise.

They live apart from :mod:`graphcomms.errors` (which re-exports them and draws the whole
tree) only so that the models can raise ``InvalidRequestError`` without the errors
module, whose operation errors name the models, importing them back.
"""

from __future__ import annotations

__all__ = ["GraphCommsError", "InvalidRequestError"]


class GraphCommsError(Exception):
    """Base of every graphcomms exception."""

    __module__ = "graphcomms.errors"  # where users import it from, and tracebacks say


class InvalidRequestError(GraphCommsError, ValueError):
    """The request was refused before anything was sent, because Graph would refuse it."""

    __module__ = "graphcomms.errors"
