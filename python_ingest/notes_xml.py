"""Clinical notes as research corpora ship them in XML: one note per file, the i2b2/n2c2 layout.

The i2b2 and n2c2 shared-task corpora (de-identification 2006/2014, obesity, medication,
heart-disease risk, ...) deliver each record as::

    <?xml version="1.0" encoding="UTF-8" ?>
    <deidi2b2>
    <TEXT><![CDATA[
    Record date: 2067-05-03 ...
    ]]></TEXT>
    <TAGS>
    <DATE id="P0" start="16" end="26" text="2067-05-03" TYPE="DATE" comment="" />
    ...
    </TAGS>
    </deidi2b2>

The note is ``TEXT`` exactly as written (its ``start``/``end`` offsets in the annotations count
characters of that text, so it is not trimmed); the annotations, when present, are kept with the
note as ``extra_fields`` (``{"TAGS": [{"tag": "DATE", "id": "P0", ...}]}``), gold standard for
the NLP models. An XML file without a ``TEXT`` element (a C-CDA document, some other XML) is
not a note this reader knows and is quarantined whole with its root element named; XML that
does not parse, or that declares entities (the expansion attacks ``defusedxml`` refuses), is
quarantined with the parser's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

TEXT_TAG, TAGS_TAG = "TEXT", "TAGS"


@dataclass
class XmlNote:
    """A note read from XML: its text and what else the file says about it."""

    text: str
    extra: dict[str, object]


def read_xml_note(data: bytes) -> XmlNote | str:
    """The note of one i2b2/n2c2 XML file, or the reason it is not one."""
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        return f"the XML does not parse ({type(exc).__name__}: {exc})"
    text = root.find(TEXT_TAG) if root.tag != TEXT_TAG else root
    if text is None:
        children = ", ".join(dict.fromkeys(child.tag for child in root)) or "none"
        return (
            f"an XML document with root <{root.tag}> (children: {children[:200]}) and no <TEXT> "
            "element, so not a note in the i2b2/n2c2 layout"
        )
    extra: dict[str, object] = {}
    tags = root.find(TAGS_TAG)
    if tags is not None:
        extra[TAGS_TAG] = [_annotation(tag) for tag in tags]
    for child in root:
        if child.tag not in (TEXT_TAG, TAGS_TAG) and (child.text or "").strip():
            extra[child.tag] = child.text  # e.g. a corpus's per-record labels
    return XmlNote(text.text or "", extra)


def _annotation(tag: Element) -> dict[str, str]:
    return {"tag": tag.tag, **tag.attrib}
