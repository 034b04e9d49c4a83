"""MkDocs hook: the docstrings' Sphinx roles (``:class:`~deepshap.Explanation```) read as plain code.

The docstrings are written for both ``help()`` and this site; mkdocstrings renders a role as the text
``:class:`` followed by the code span, so the role's prefix (and a leading ``~``) is dropped here.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):(<code>)~?")


def on_page_content(html_text: str, **kwargs: Any) -> str:
    """Drop Sphinx role prefixes in front of code spans."""
    return _ROLE.sub(r"\1", html_text)
