"""Ids from URLs: one parser for every route."""

import re
import uuid

from crm.errors import not_found

CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def parse_id(raw: str) -> uuid.UUID:
    """An id from a URL, in the form the API writes it (uuid.UUID alone would also take
    braces, `urn:uuid:` or no hyphens); a malformed one is answered like a missing one."""
    if not CANONICAL_UUID.fullmatch(raw):
        raise not_found()
    return uuid.UUID(raw)
