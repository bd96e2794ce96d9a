"""Parse the XML parts of an EPUB (container.xml, OPF, nav document, NCX): pure, over bytes.

lxml runs in recover mode with entities and network off: real-world EPUBs carry sloppy XML,
and a book must never make the parser fetch or expand anything. Element names are matched by
local name, so EPUB 2 and 3 and odd namespace prefixes read the same.
"""

from __future__ import annotations

import dataclasses
import posixpath
from urllib.parse import unquote

from lxml import etree

_PARSER = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
_OPS_TYPE = "{http://www.idpf.org/2007/ops}type"

#: (level, title, zip path, fragment) of one table-of-contents entry
TocEntry = tuple[int, str, str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    path: str
    media_type: str
    properties: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Package:
    title: str | None
    authors: tuple[str, ...]
    language: str | None
    identifiers: tuple[str, ...]
    manifest: dict[str, Item]
    #: manifest ids in reading order (duplicates and dangling ids included, as written)
    spine: tuple[str, ...]
    #: manifest id of the NCX (EPUB 2 ``<spine toc="...">``)
    ncx_id: str | None


def parse_xml(data: bytes) -> etree._Element | None:
    """The root element, or None when even recover mode finds no document."""
    try:
        return etree.fromstring(data, _PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None


def resolve(base: str, href: str) -> tuple[str, str]:
    """Zip path and fragment of ``href`` relative to the document at ``base``."""
    target, _, fragment = href.partition("#")
    target = unquote(target.strip())
    if not target:
        return base, fragment
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), target)).lstrip("/"), fragment


def rootfile(container: bytes) -> str | None:
    """Path of the first OPF package named in META-INF/container.xml."""
    root = parse_xml(container)
    if root is None:
        return None
    for el in root.iter("{*}rootfile"):
        if el.get("full-path"):
            return unquote(el.get("full-path").strip().lstrip("/"))
    return None


def parse_opf(data: bytes, opf_path: str) -> Package | None:
    """Metadata, manifest and spine of an OPF document, or None if it is not one."""
    root = parse_xml(data)
    if root is None or etree.QName(root).localname != "package":
        return None
    manifest = {}
    for el in root.iter("{*}item"):
        if el.get("id") and el.get("href"):
            path, _ = resolve(opf_path, el.get("href"))
            manifest[el.get("id")] = Item(path, (el.get("media-type") or "").lower(), el.get("properties") or "")
    spine_el = next(root.iter("{*}spine"), None)
    spine = tuple(el.get("idref", "") for el in root.iter("{*}itemref"))
    return Package(
        title=_first(root, "title"),
        authors=tuple(_authors(root)),
        language=_first(root, "language"),
        identifiers=tuple(_all(root, "identifier")),
        manifest=manifest,
        spine=spine,
        ncx_id=spine_el.get("toc") if spine_el is not None else None,
    )


def parse_nav(data: bytes, nav_path: str) -> list[TocEntry]:
    """Entries of the EPUB 3 nav document's ``toc`` nav (or its first nav), depth-first."""
    root = parse_xml(data)
    if root is None:
        return []
    navs = list(root.iter("{*}nav"))
    nav = next((n for n in navs if "toc" in (n.get(_OPS_TYPE) or "").split()), navs[0] if navs else None)
    if nav is None:
        return []
    top = next(nav.iter("{*}ol"), None)
    return _walk_ol(top, nav_path, 0) if top is not None else []


def parse_ncx(data: bytes, ncx_path: str) -> list[TocEntry]:
    """Entries of an EPUB 2 NCX navMap, depth-first."""
    root = parse_xml(data)
    if root is None:
        return []
    nav_map = next(root.iter("{*}navMap"), None)
    return _walk_points(nav_map, ncx_path, 0) if nav_map is not None else []


def _walk_ol(ol, base: str, level: int) -> list[TocEntry]:
    entries: list[TocEntry] = []
    for li in ol.iterchildren("{*}li"):
        link = next(li.iterchildren("{*}a"), None)
        label = link if link is not None else next(li.iterchildren("{*}span"), None)
        title = _text(label) if label is not None else ""
        if link is not None and link.get("href"):
            entries.append((level, title, *resolve(base, link.get("href"))))
        for sub in li.iterchildren("{*}ol"):
            entries.extend(_walk_ol(sub, base, level + 1))
    return entries


def _walk_points(parent, base: str, level: int) -> list[TocEntry]:
    entries: list[TocEntry] = []
    for point in parent.iterchildren("{*}navPoint"):
        label = next(point.iter("{*}text"), None)
        content = next(point.iterchildren("{*}content"), None)
        if content is not None and content.get("src"):
            entries.append((level, _text(label) if label is not None else "", *resolve(base, content.get("src"))))
        entries.extend(_walk_points(point, base, level + 1))
    return entries


def _text(el) -> str:
    return " ".join("".join(el.itertext()).split())


#: MARC relator codes of a creator who wrote the book (no role given also counts as author)
_AUTHOR_ROLES = {"aut", "author"}


def _authors(root) -> list[str]:
    """The book's authors among its ``dc:creator`` entries: not its illustrators, translators or editors.

    EPUB 2 puts the role on the element (``opf:role="ill"``); EPUB 3 in a ``<meta refines="#id"
    property="role">``. A creator with no role is an author; if every creator has another role
    (an anthology credited to its editor), they are all kept rather than none.
    """
    metadata = next(root.iter("{*}metadata"), root)
    roles: dict[str, str] = {}
    for meta in metadata.iter("{*}meta"):
        if (meta.get("property") or "") == "role" and (meta.get("refines") or "").startswith("#"):
            roles[meta.get("refines")[1:]] = (_text(meta) or "").strip().lower()
    creators = []
    for el in metadata.iter("{*}creator"):
        name = _text(el)
        if not name:
            continue
        role = next((v for k, v in el.attrib.items() if k.endswith("role")), None) or roles.get(el.get("id") or "")
        creators.append((name, (role or "aut").strip().lower()))
    authors = [name for name, role in creators if role in _AUTHOR_ROLES]
    return authors or [name for name, _role in creators]


def _all(root, name: str) -> list[str]:
    metadata = next(root.iter("{*}metadata"), root)
    return [t for t in (_text(el) for el in metadata.iter(f"{{*}}{name}")) if t]


def _first(root, name: str) -> str | None:
    found = _all(root, name)
    return found[0] if found else None
