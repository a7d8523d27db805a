"""The note text a FHIR DocumentReference carries inline, decoded for the notes pipeline.

An EHR's FHIR API (US Core "Clinical Notes") and Synthea both deliver clinical notes as
DocumentReferences whose ``content[].attachment`` holds the document: inline as base64
``data``, or by ``url`` only. Only plain text is a note the NLP can read; a PDF, an image, a
CDA or HTML rendering stays in ``raw_json`` for another tool. The first ``text/plain``
attachment with inline data is the note (an EHR may attach a PDF rendering next to it); its
``charset`` parameter is honoured, UTF-8 when none is given (FHIR's default for text).

``text_status`` says why a document has no text, so silver can account for it:
``decoded``, ``no_attachment`` (none, or none with data or a url), ``not_inline`` (a ``url``
only: the document lives elsewhere),
``not_plain_text`` (another content type), ``undecodable`` (the bytes are not text in the
declared charset, or the base64 is damaged).
"""

from __future__ import annotations

import base64
import binascii
import codecs
from dataclasses import dataclass
from typing import Any

PLAIN = "text/plain"


@dataclass(frozen=True)
class NoteText:
    """The attachment chosen as the note and its decoded text (None with ``status`` saying why)."""

    content_type: str | None
    url: str | None
    title: str | None
    text: str | None
    status: str


def _media_type(content_type: str | None) -> tuple[str, str]:
    """(``type/subtype`` in lower case, the charset parameter or ``utf-8``)."""
    if not content_type:
        return "", "utf-8"
    media, *params = (p.strip() for p in content_type.split(";"))
    charset = "utf-8"
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return media.lower(), charset


def _attachments(content: Any) -> list[dict[str, Any]]:
    items = content if isinstance(content, list) else []
    found = [c.get("attachment") for c in items if isinstance(c, dict)]
    return [a for a in found if isinstance(a, dict)]


def _decode(data: str, charset: str) -> str | None:
    try:
        # base64Binary may carry whitespace (FHIR R4 datatypes); nothing else is dropped.
        raw = base64.b64decode("".join(data.split()), validate=True)
        codecs.lookup(charset)
        return raw.decode(charset).removeprefix("\ufeff")
    except (binascii.Error, LookupError, UnicodeDecodeError, ValueError):
        return None


def note_text(content: Any) -> NoteText:
    """The note of a DocumentReference's ``content`` (see the module docstring)."""
    attachments = _attachments(content)
    if not attachments:
        return NoteText(None, None, None, None, "no_attachment")
    inline_plain = [
        a
        for a in attachments
        if _media_type(a.get("contentType"))[0] == PLAIN and isinstance(a.get("data"), str)
    ]
    chosen = inline_plain[0] if inline_plain else attachments[0]
    content_type = chosen.get("contentType") if isinstance(chosen.get("contentType"), str) else None
    url = chosen.get("url") if isinstance(chosen.get("url"), str) else None
    title = chosen.get("title") if isinstance(chosen.get("title"), str) else None
    if not inline_plain:
        if any(isinstance(a.get("data"), str) for a in attachments):
            status = "not_plain_text"
        elif any(isinstance(a.get("url"), str) for a in attachments):
            status = "not_inline"
        else:  # attachments with neither data nor a url hold no document
            status = "no_attachment"
        return NoteText(content_type, url, title, None, status)
    text = _decode(chosen["data"], _media_type(content_type)[1])
    return NoteText(
        content_type, url, title, text, "decoded" if text is not None else "undecodable"
    )
