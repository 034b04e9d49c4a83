"""MkDocs hook: the formulas become MathML when the site is built, so they render with no JavaScript and
no network (browsers draw MathML natively).

pymdownx.arithmatex (generic mode) keeps the TeX between ``\\( \\)`` and ``\\[ \\]`` away from Markdown and
wraps it in ``<span class="arithmatex">`` or ``<div class="arithmatex">``; this hook converts what is
inside with latex2mathml. A formula latex2mathml cannot read stops the build with its TeX in the message.
"""

from __future__ import annotations

import html
import re
from typing import Any

from latex2mathml.converter import convert

_FORMULA = re.compile(r'<(span|div) class="arithmatex">(.*?)</\1>', re.DOTALL)
_DELIMITERS = {"span": ("\\(", "\\)"), "div": ("\\[", "\\]")}


def _to_mathml(match: re.Match[str]) -> str:
    tag, body = match.group(1), html.unescape(match.group(2)).strip()
    opening, closing = _DELIMITERS[tag]
    if not (body.startswith(opening) and body.endswith(closing)):
        raise ValueError(f"unexpected formula markup: {match.group(0)[:200]}")
    tex = body[len(opening) : -len(closing)].strip()
    try:
        mathml = convert(tex, display="block" if tag == "div" else "inline")
    except Exception as exc:  # latex2mathml raises several types; name the formula whatever it is
        raise ValueError(f"latex2mathml cannot convert {tex!r}: {exc}") from exc
    return f'<{tag} class="arithmatex">{mathml}</{tag}>'


def on_page_content(html_text: str, **kwargs: Any) -> str:
    """Replace every formula of a page's HTML with its MathML."""
    return _FORMULA.sub(_to_mathml, html_text)
