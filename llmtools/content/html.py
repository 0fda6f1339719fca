"""HTML to clean Markdown: the page's main content, links kept, page furniture dropped.

How the main content is found, in order (lxml does the parsing, markdownify writes the
Markdown):

1. Drop what is never content: scripts, styles, templates, SVG, iframes, form controls,
   hidden elements (`hidden`, `aria-hidden`, inline `display: none`).
2. Start from `<main>` (or `role="main"`), else `<body>`. If an `<article>` there holds
   most of that text (or is the only substantial one), start from the article instead:
   that drops comment threads and "more stories" lists around it.
3. Inside, drop page furniture: `<nav>`, `<aside>`, `<footer>`, site `<header>`s (those
   without the page's heading), landmark roles (navigation, banner, contentinfo,
   complementary, search) and elements whose class or id names furniture (cookie banners,
   sidebars, share buttons, newsletters, ads, comments...). Nothing that holds a large
   share of the text is dropped on its class name alone, so a wrapper called
   `page-with-sidebar` cannot take the article with it, unless it is mostly links (a big
   sidebar). Blocks that are almost all link text (five links or more, a small share of
   the page) go too, whatever they are called: navigation under a class name we do not know.
   scripts/bench_extract.py compares this with trafilatura and readability-lxml.
4. Links become absolute (against `<base href>` or the page URL); links to nowhere
   (`javascript:`, bare fragments on the same page) keep their text only. Images stay as
   `![alt](url)` when they have alt text and a real URL; data: URIs and decorative
   images go.

The page `<title>` is returned separately and put on top as a heading when the content
has no `<h1>` of its own.
"""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import urldefrag

NEVER_CONTENT = ("script", "style", "noscript", "template", "svg", "canvas", "iframe", "object",
                 "embed", "link", "meta", "button", "input", "select", "textarea", "dialog")
FURNITURE_TAGS = ("nav", "aside", "footer")
FURNITURE_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog",
                   "alertdialog", "menu", "menubar"}
# Whole words of a class or id (split on "-", "_" and spaces) that name page furniture.
FURNITURE_WORDS = {
    "nav", "navbar", "navigation", "menu", "breadcrumb", "breadcrumbs", "sidebar", "footer",
    "header", "masthead", "cookie", "cookies", "consent", "gdpr", "banner", "popup", "modal",
    "newsletter", "subscribe", "subscription", "promo", "advert", "advertisement", "ads", "ad",
    "sponsored", "share", "sharing", "social", "related", "recommended", "trending", "comments",
    "comment", "disqus", "skip", "toolbar", "paywall", "signup",
    # Names blog, shop and forum software give their furniture.
    "sharedaddy", "respond", "widget", "widgets", "copyright", "pagination", "pager",
    "signature",
}
# A furniture-named element is spared when it holds more than this share of the text,
# unless it is mostly link text (a sidebar of links is furniture whatever its size).
FURNITURE_MAX_SHARE = 0.3
# A block this much link text, with at least LINK_LIST_MIN links and under the furniture
# share, is a list of links to elsewhere (site navigation under a class name we do not know).
LINK_DENSITY_MAX = 0.8
LINK_LIST_MIN = 5
LINK_BLOCK_TAGS = ("div", "ul", "ol", "section", "table", "dl")
PRESERVE_WHITESPACE = {"pre", "code", "textarea"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_WORD_SPLIT = re.compile(r"[\s_-]+")
_SPACES = re.compile(r"\s+")


@dataclasses.dataclass
class HtmlDocument:
    title: str | None
    markdown: str


def _text_length(element) -> int:
    return len(_SPACES.sub("", element.text_content() or ""))


def _is_hidden(element) -> bool:
    if element.get("hidden") is not None or element.get("aria-hidden") == "true":
        return True
    return bool(_HIDDEN_STYLE.search(element.get("style") or ""))


def _furniture_words(element) -> set[str]:
    names = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
    return {word for word in _WORD_SPLIT.split(names) if word}


@dataclasses.dataclass
class _Measure:
    """What the furniture rules ask of an element's subtree, counted once for all of them."""

    text: int = 0  # non-space characters of its text (`_text_length`)
    link_text: int = 0  # the same over each <a> below it (nested links count twice, as `.//a` does)
    links: int = 0  # <a> elements below it
    heading: bool = False  # an <h1> below it or itself


def _measure(elements: list) -> dict:
    """Each element's `_Measure`, bottom-up in one pass over `elements` (a whole subtree in
    document order): asking each element of its own subtree is quadratic in the nesting depth."""
    measures: dict = {}
    for element in reversed(elements):
        if not isinstance(element.tag, str):  # comments and processing instructions: only their tail counts
            continue
        measure = _Measure(text=_bare_length(element.text), heading=element.tag == "h1")
        for child in element:
            measure.text += _bare_length(child.tail)
            found = measures.get(child)
            if found is None:
                continue
            measure.text += found.text
            measure.link_text += found.link_text + (found.text if child.tag == "a" else 0)
            measure.links += found.links + (child.tag == "a")
            measure.heading = measure.heading or found.heading
        measures[element] = measure
    return measures


def _bare_length(text: str | None) -> int:
    return len(_SPACES.sub("", text)) if text else 0


def _link_density(measure: _Measure) -> float:
    """The share of an element's text that is link text."""
    return measure.link_text / measure.text if measure.text else 0.0


def _is_link_list(element, measure: _Measure, total: int) -> bool:
    if element.tag not in LINK_BLOCK_TAGS or measure.heading:
        return False
    if measure.links < LINK_LIST_MIN or measure.text > FURNITURE_MAX_SHARE * total:
        return False
    return _link_density(measure) >= LINK_DENSITY_MAX


def _drop(element) -> None:
    # drop_tree keeps the element's tail text, which belongs to the parent.
    if element.getparent() is not None:
        element.drop_tree()


def _main_root(body):
    mains = body.xpath(".//main | .//*[@role='main']")
    root = max(mains, key=_text_length) if mains else body
    articles = root.xpath(".//article")
    if articles:
        best = max(articles, key=_text_length)
        share = _text_length(best) / max(1, _text_length(root))
        if share >= 0.5 or (len(articles) == 1 and _text_length(best) >= 500):
            return best
    return root


def _drop_furniture(root) -> None:
    elements = list(root.iter())
    # Measured before any drop: the walk is in document order, so a dropped element's
    # ancestors are behind it and what comes later is never one of them.
    measures = _measure(elements)
    total = max(1, measures[root].text)
    for element in elements:
        if element is root or not isinstance(element.tag, str) or element.getparent() is None:
            continue
        # Skip elements already dropped with an ancestor.
        if element.getroottree().getroot() is not root.getroottree().getroot():
            continue
        tag = element.tag
        measure = measures[element]
        role = (element.get("role") or "").lower()
        if tag in FURNITURE_TAGS or (role in FURNITURE_ROLES and role != "banner"):
            _drop(element)
        elif tag == "header" or role == "banner":
            if not measure.heading:
                _drop(element)
        elif _furniture_words(element) & FURNITURE_WORDS:
            if not measure.heading and (measure.text <= FURNITURE_MAX_SHARE * total
                                        or _link_density(measure) >= 0.5):
                _drop(element)
        elif _is_link_list(element, measure, total):
            _drop(element)


def _tidy_links_and_images(root, page_url: str | None) -> None:
    page = urldefrag(page_url)[0] if page_url else None
    for link in root.xpath(".//a"):
        href = (link.get("href") or "").strip()
        if not _SPACES.sub("", link.text_content() or "") and not link.xpath(".//img"):
            _drop(link)
        elif not href or href.lower().startswith(("javascript:", "#")) or (
                page and "#" in href and urldefrag(href)[0] == page):
            link.drop_tag()
    for image in root.xpath(".//img"):
        src = (image.get("src") or "").strip()
        if not (image.get("alt") or "").strip() or not src.lower().startswith(("http://", "https://")):
            _drop(image)


def _collapse_whitespace(root) -> None:
    """Runs of whitespace to one space, as a browser shows them, except inside <pre>."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        inside_pre = any(a.tag in PRESERVE_WHITESPACE for a in element.iterancestors()) or \
            element.tag in PRESERVE_WHITESPACE
        if element.text and not inside_pre:
            element.text = _SPACES.sub(" ", element.text)
        parent = element.getparent()
        parent_in_pre = parent is not None and (
            parent.tag in PRESERVE_WHITESPACE
            or any(a.tag in PRESERVE_WHITESPACE for a in parent.iterancestors()))
        if element.tail and not parent_in_pre:
            element.tail = _SPACES.sub(" ", element.tail)


def _title(document) -> str | None:
    for path in ("//meta[@property='og:title']/@content", "//title//text()"):
        found = " ".join(" ".join(document.xpath(path)).split())
        if found:
            return found
    return None


def _clean_markdown(markdown: str) -> str:
    lines = [line.rstrip() for line in markdown.splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_to_markdown(html: str | bytes, base_url: str | None = None) -> HtmlDocument:
    """The main content of an HTML page as Markdown, and the page title."""
    import lxml.etree
    import lxml.html
    from markdownify import markdownify

    if isinstance(html, str):
        # lxml refuses str input that carries an XML encoding declaration.
        html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html)
    if not (html.strip() if isinstance(html, str) else html.strip()):
        return HtmlDocument(title=None, markdown="")
    try:
        document = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return HtmlDocument(title=None, markdown="")
    title = _title(document)
    flat = _flat_text_if_lost(html, document)
    if flat is not None:
        return HtmlDocument(title=title, markdown=flat)
    # Links within the page and script links lead nowhere for a reader of the Markdown;
    # catch them before <base href> turns "#top" into an absolute URL elsewhere.
    for link in document.xpath("//a[@href]"):
        if link.get("href", "").strip().lower().startswith(("#", "javascript:")):
            link.drop_tag()
    if base_url:
        document.make_links_absolute(base_url, resolve_base_href=True, handle_failures="ignore")

    lxml.etree.strip_elements(document, lxml.etree.Comment, lxml.etree.ProcessingInstruction,
                              *NEVER_CONTENT, with_tail=False)
    for element in document.xpath("//*[@hidden or @aria-hidden='true' or @style]"):
        if _is_hidden(element):
            _drop(element)

    body = document.find("body")
    if body is None:
        body = document
    root = _main_root(body)
    _drop_furniture(root)
    _tidy_links_and_images(root, base_url)
    _collapse_whitespace(root)

    markdown = markdownify(
        lxml.html.tostring(root, encoding="unicode"),
        heading_style="ATX", bullets="-", escape_underscores=False, escape_asterisks=False,
    )
    markdown = _clean_markdown(markdown)
    if title and not root.xpath("descendant-or-self::h1"):
        markdown = f"# {title}\n\n{markdown}" if markdown else f"# {title}"
    return HtmlDocument(title=title, markdown=markdown)


# --- pages the parser cannot hold -----------------------------------------------------------

_INVISIBLE_BLOCKS = re.compile(r"<(script|style|template|noscript)\b.*?</\1\s*>", re.I | re.S)
_BLOCK_TAGS = re.compile(r"</?(?:p|div|br|li|h[1-6]|tr|section|article|blockquote|pre)\b[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]*>")


def _flat_text_if_lost(html: str | bytes, document) -> str | None:
    """The page's text without its structure, when the parser lost most of it.

    libxml2 stops descending at a few hundred levels of nesting and drops what lies deeper,
    silently; a page nested 100,000 deep would come back empty. Its text is then taken
    from the markup itself (tags stripped, blocks as paragraphs), with a warning.
    """
    import html as entities

    from llmtools.notices import warn

    markup = html.decode("utf-8", "replace") if isinstance(html, bytes) else html
    text = _INVISIBLE_BLOCKS.sub(" ", markup)
    text = _TAGS.sub(" ", _BLOCK_TAGS.sub("\n\n", text))
    raw_length = len(_SPACES.sub("", entities.unescape(text)))
    if _text_length(document) * 2 >= raw_length:
        return None
    warn("the page is nested too deeply to parse (libxml2 stops at a few hundred levels); "
         "its text is given without structure")
    paragraphs = (" ".join(entities.unescape(block).split()) for block in text.split("\n\n"))
    return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)
