"""The demo's ``index.html``: a static page with each section's text, timing and images."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from deepshap.demo.sections import SectionResult

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
section { border-top: 1px solid #ddd; padding-top: 1em; margin-top: 1.5em; }
.time { color: #777; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #eee; }
"""
TITLE = "<title>deepshap demo</title>"


def is_gallery(index: Path) -> bool:
    """Whether ``index`` is a page this demo wrote (so replacing it loses nothing of the user's)."""
    with open(index, encoding="utf-8", errors="replace") as page:
        return TITLE in page.read(4096)


def render_section(result: SectionResult) -> str:
    paragraphs = "\n".join(f"<p>{html.escape(line)}</p>" for line in result.text)
    images = "\n".join(
        f'<p><img src="{html.escape(urllib.parse.quote(name))}" alt="{html.escape(result.title)}"></p>'
        for name in result.images
    )
    return (
        f"<section>\n<h2>{html.escape(result.title)}</h2>\n"
        f'<p class="time">{result.seconds:.1f} s</p>\n{paragraphs}\n{images}\n</section>'
    )


def write_gallery(
    out: Path, summary: Sequence[str], results: Sequence[SectionResult], heading: str = "deepshap demo"
) -> Path:
    """Write ``out/index.html`` for the finished sections (under ``heading``) and return its path."""
    header = "\n".join(f"<p>{html.escape(line)}</p>" for line in summary)
    body = "\n".join(render_section(result) for result in results)
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"{TITLE}\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(heading)}</h1>\n{header}\n{body}\n</body>\n</html>\n"
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
