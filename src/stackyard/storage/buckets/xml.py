"""S3's XML: documents written as text (escaped), request documents parsed with ElementTree.

Request documents are small (size-limited by the caller) and may not carry a DOCTYPE, so no
entity can be declared and expanded.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from email.utils import formatdate
from xml.sax.saxutils import escape

from .errors import MalformedXML

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

Node = tuple[str, "str | int | bool | float | Iterable[Node] | None"]


def iso_time(epoch: float) -> str:
    """``2009-10-12T17:50:30.000Z``, as S3 writes times in XML."""
    millis = int(epoch * 1000) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"


def http_time(epoch: float) -> str:
    """``Wed, 12 Oct 2009 17:50:30 GMT`` (Last-Modified)."""
    return formatdate(int(epoch), usegmt=True)


def _render(nodes: Iterable[Node], out: list[str]) -> None:
    for name, value in nodes:
        if value is None:
            continue
        if isinstance(value, bool):
            out.append(f"<{name}>{'true' if value else 'false'}</{name}>")
        elif isinstance(value, str | int | float):
            out.append(f"<{name}>{escape(str(value))}</{name}>")
        else:
            out.append(f"<{name}>")
            _render(value, out)
            out.append(f"</{name}>")


def document(root: str, nodes: Iterable[Node], namespace: bool = True) -> bytes:
    """A whole XML answer: ``<root xmlns=…>nodes</root>``."""
    out = [_DECLARATION, f'<{root} xmlns="{NAMESPACE}">' if namespace else f"<{root}>"]
    _render(nodes, out)
    out.append(f"</{root}>")
    return "".join(out).encode()


def parse(body: bytes) -> ET.Element:
    """A request document; MalformedXML if it is not one (or declares a DOCTYPE)."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise MalformedXML()
    try:
        return ET.fromstring(body)
    except ET.ParseError as exc:
        raise MalformedXML() from exc


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (child for child in element if local(child.tag) == name)


def child_text(element: ET.Element, name: str) -> str | None:
    for child in children(element, name):
        return child.text or ""
    return None
