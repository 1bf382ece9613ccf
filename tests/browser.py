"""Test helpers for the HTML reports: a minimal DOM parser and headless Chromium (networking off)."""
import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
CSP_META = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>')


class Node:
    def __init__(self, tag: str, attrs: Dict[str, Optional[str]], parent: Optional["Node"]):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: List[object] = []  # Nodes and strings

    def text(self, skip=lambda node: False) -> str:
        return "".join(c if isinstance(c, str) else c.text(skip) for c in self.children
                       if isinstance(c, str) or not skip(c))

    def find_all(self, tag: str, **attrs) -> List["Node"]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and all(child.attrs.get(k) == v for k, v in attrs.items()):
                    found.append(child)
                found.extend(child.find_all(tag, **attrs))
        return found

    def find_id(self, id_: str) -> "Node":
        found = [node for node in walk(self) if node.attrs.get("id") == id_]
        assert len(found) == 1, f"{len(found)} elements with id {id_!r}"
        return found[0]

    def elements(self) -> List["Node"]:
        return [c for c in self.children if isinstance(c, Node)]


def walk(node: Node) -> Iterator[Node]:
    for child in node.elements():
        yield child
        yield from walk(child)


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def squash(text: str) -> str:
    return "".join(text.split())


def browser() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    why = "Chromium is not installed (apt-get install chromium); the HTML reports' browser tests need it"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def chromium(args: List[str], profile: Path) -> subprocess.CompletedProcess:
    """Headless Chromium with a new profile in `profile`; any fetch fails (no proxy answers,
    no name resolves)."""
    command = [
        browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
        *args,
    ]
    proc = subprocess.run(command, capture_output=True, timeout=180)
    assert proc.returncode == 0, proc.stderr.decode("utf8", "replace")[-3000:]
    return proc


def dump_dom(page: Path, profile: Path, width: int = 1280) -> str:
    """The DOM after the page loaded, as Chromium serializes it, in a window `width` px wide."""
    return chromium([f"--window-size={width},900", "--dump-dom", page.resolve().as_uri()], profile).stdout.decode("utf8")


def without_csp(html: str, script: str = "") -> str:
    """A copy of a report with its Content-Security-Policy removed and `script` (test-only)
    run at the end of the body."""
    assert len(CSP_META.findall(html)) == 1, "the page has no Content-Security-Policy meta tag"
    copy = CSP_META.sub("", html)
    if script:
        assert copy.count("</body>") == 1
        copy = copy.replace("</body>", f"<script>{script}</script></body>")
    return copy


def png_rows(path: Path):
    """(width, height, the filtered scanlines) of a non-interlaced 8-bit PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and interlace == 0, header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    assert len(raw) == stride * height
    return width, height, [raw[i * stride:(i + 1) * stride] for i in range(height)]
