"""Visible text of an HTML fragment, as a reader of the rendered page would see it.

Why a parser and not a regex: feed exports carry markup in their text fields (The Guardian's
descriptions are `<p>...</p><ul><li><a ...>...</a></li></ul>`), with entities (`&amp;`,
`&#8217;`), attributes that contain `>`, and comments. The standard library's `html.parser`
handles all of these. On top of it this module only decides where the spaces go: a block
element (`<p>`, `<br>`, `<li>`, ...) separates words, an inline one (`<a>`, `<b>`, `<span>`)
does not, and `<script>`/`<style>` content is not text at all.
"""

from __future__ import annotations

from html.parser import HTMLParser

# Elements that start a new line (or box) when rendered: their edges separate words.
BLOCK_ELEMENTS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# Elements whose content is never shown as text.
HIDDEN_ELEMENTS = frozenset({"script", "style", "template", "noscript"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside hidden elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_ELEMENTS:
            self.hidden += 1
        elif tag in BLOCK_ELEMENTS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCK_ELEMENTS:  # <br/>, <hr/>; a self-closed hidden element has no content
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_ELEMENTS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCK_ELEMENTS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(text: str) -> str:
    """Tags removed, entities decoded, whitespace collapsed as a browser would render it.

    Text without `<` or `&` cannot contain markup and is returned unchanged (the common case
    in a mixed corpus costs no parsing).
    """
    if "<" not in text and "&" not in text:
        return text
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return " ".join("".join(parser.parts).split())
