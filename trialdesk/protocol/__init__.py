"""Protocol files: the schema (pydantic) and the loader that validates and hashes them."""

from trialdesk.protocol.loader import DEFAULT_PROTOCOL, load_protocol, parse_protocol
from trialdesk.protocol.schema import Protocol

__all__ = ["DEFAULT_PROTOCOL", "Protocol", "load_protocol", "parse_protocol"]
