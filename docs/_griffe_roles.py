"""A griffe extension for the API reference: the docstrings are written in reST
(``code``, :class:`Name`, ``::`` blocks) for editors and ``help()``; this turns those
spellings into Markdown as mkdocstrings reads them. A cross-reference becomes an
autorefs link, so one that names nothing fails ``mkdocs build --strict``."""

from __future__ import annotations

import builtins
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|exc|data|obj):`(~?)([^`<>]+?)`")
_LITERAL_BLOCK = re.compile(r"(^|\S)[ \t]*::[ \t]*$", re.MULTILINE)


def _link(match: re.Match[str], obj: griffe.Object) -> str:
    tilde, target = match.group(1), match.group(2).strip().lstrip(".")
    shown = target.rsplit(".", 1)[-1] if tilde else target
    if "." not in target:
        if hasattr(builtins, target):  # TypeError, TimeoutError: Python's own
            return f"`{shown}`"
        target = _resolve(target, obj)
    elif target.split(".", 1)[0] != "graphcomms":
        # Another package's (datetime.datetime): no inventory is fetched at build time.
        return f"`{shown}`"
    return f"[`{shown}`][{target}]"


def _resolve(name: str, obj: griffe.Object) -> str:
    """A bare name as Sphinx resolves it: a member of the enclosing class, else of the
    module; left as written (and so reported as broken) when neither has it."""
    scope: griffe.Object | None = obj
    while scope is not None:
        if (scope.is_class or scope.is_module) and name in scope.members:
            return f"{scope.path}.{name}"
        scope = scope.parent
    return name


class ReSTRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **_: Any) -> None:
        docstring = obj.docstring
        if docstring is None:
            return
        text = _ROLE.sub(lambda m: _link(m, obj), docstring.value)
        # reST's "text::" then an indented block: Markdown shows the block as code.
        text = _LITERAL_BLOCK.sub(lambda m: m.group(1) + (":" if m.group(1) else ""), text)
        docstring.value = text
