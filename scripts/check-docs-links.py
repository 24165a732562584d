#!/usr/bin/env python3
"""check-docs-links.py: checks every internal link of the HTML documentation.

    scripts/check-docs-links.py [html-dir]     (default: build/html, from scripts/build-docs.sh)

For every page under the directory, each relative href and src (links, images, stylesheets)
must name a file that exists there (a directory counts if it has an index.html), and each
#anchor must be the id (or the name) of an element of the page it points to. External links
(with a scheme, or starting with //) are not followed. Prints the broken ones, one a line, and
exits 1 if there are any.
"""
import os
import sys
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit


class Page(HTMLParser):
    """The ids and the outgoing references of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.refs = []  # (line, attribute value)

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.refs.append((self.getpos()[0], value))

    handle_startendtag = handle_starttag


def parse(path):
    page = Page()
    with open(path, encoding="utf-8") as f:
        page.feed(f.read())
    page.close()
    return page


def main():
    top = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                          os.path.join(os.path.dirname(__file__), "..", "build", "html"))
    if not os.path.isdir(top):
        print(f"check-docs-links: {top} is not a directory (run scripts/build-docs.sh)")
        return 1
    pages = {}
    for dirpath, _, files in os.walk(top):
        for name in files:
            if name.endswith(".html"):
                path = os.path.join(dirpath, name)
                pages[path] = parse(path)
    if not pages:
        print(f"check-docs-links: no HTML pages under {top}")
        return 1

    broken = []
    checked = 0
    for path, page in sorted(pages.items()):
        rel = os.path.relpath(path, top)
        for line, ref in page.refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith("//"):
                continue
            checked += 1
            if parts.path:
                target = os.path.normpath(os.path.join(os.path.dirname(path), unquote(parts.path)))
                if not (target == top or target.startswith(top + os.sep)):
                    broken.append(f"{rel}:{line}: {ref}: outside the documentation tree")
                    continue
                if os.path.isdir(target):
                    target = os.path.join(target, "index.html")
                if not os.path.isfile(target):
                    broken.append(f"{rel}:{line}: {ref}: no such file")
                    continue
            else:
                target = path
            fragment = unquote(parts.fragment)
            if fragment:
                if target not in pages:
                    broken.append(f"{rel}:{line}: {ref}: anchor into a page that is not HTML")
                elif fragment not in pages[target].ids:
                    broken.append(f"{rel}:{line}: {ref}: no id '{fragment}' in "
                                  f"{os.path.relpath(target, top)}")
    for b in broken:
        print(b)
    print(f"check-docs-links: {len(pages)} pages, {checked} internal links, {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
