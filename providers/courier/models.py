"""courier's resources as typed values, read from JSON:API resources.

Attributes are read leniently (a missing or ``null`` attribute is empty; a number where a
string is expected is kept as its text) because one odd attribute must not hide the rest; the
id is the only thing every resource must have (:mod:`providers.courier.jsonapi` checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from providers.courier.jsonapi import Resource
from providers.courier.states import Reading, read_bulk, read_email, read_multicast, read_text


def text_of(attributes: Mapping[str, Any], key: str) -> str:
    """A string attribute; empty when missing or null, a number as its text."""
    value = attributes.get(key)
    if value is None or isinstance(value, bool | dict | list):
        return ""
    return str(value).strip()


def flag_of(attributes: Mapping[str, Any], key: str) -> bool | None:
    """A boolean attribute; None when missing or not a boolean."""
    value = attributes.get(key)
    return value if isinstance(value, bool) else None


def ids_of(attributes: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list-of-ids attribute (strings only)."""
    value = attributes.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, str | int) and not isinstance(v, bool))


@dataclass(frozen=True, slots=True)
class Organization:
    """An organization the user can see."""

    id: str
    name: str

    @classmethod
    def read(cls, r: Resource) -> Organization:
        """From a ``organizations`` resource."""
        a = r.attributes
        return cls(r.id, text_of(a, "display-name") or text_of(a, "name"))


@dataclass(frozen=True, slots=True)
class TextAccount:
    """A text (Twilio) account of an organization."""

    id: str
    organization_id: str
    phone_number: str

    @classmethod
    def read(cls, r: Resource) -> TextAccount:
        """From a ``text-accounts`` resource."""
        a = r.attributes
        return cls(r.id, text_of(a, "organization-id"), text_of(a, "phone-number"))


@dataclass(frozen=True, slots=True)
class TextNumber:
    """A phone number of a text account, with what it can do."""

    id: str
    account_id: str
    phone_number: str
    sms: bool | None
    mms: bool | None
    voice: bool | None

    @classmethod
    def read(cls, r: Resource) -> TextNumber:
        """From a ``text-account-numbers`` resource."""
        a = r.attributes
        return cls(
            r.id,
            text_of(a, "account-id"),
            text_of(a, "phone-number"),
            flag_of(a, "capability-sms"),
            flag_of(a, "capability-mms"),
            flag_of(a, "capability-voice"),
        )

    @property
    def can_text(self) -> bool:
        """Whether it sends SMS (a number that does not say is taken at its word: yes)."""
        return self.sms is not False

    @property
    def capabilities(self) -> str:
        """What it can do, as courier's words (``sms, mms``), or ``no sms``."""
        words = [
            w for w, on in (("sms", self.sms), ("mms", self.mms), ("voice", self.voice)) if on
        ]
        if self.sms is False:
            words.insert(0, "no sms")  # i18n: not shown (among courier's own words)
        return ", ".join(words)


@dataclass(frozen=True, slots=True)
class Text:
    """A text (SMS) and where it is."""

    id: str
    status: str
    error: str
    target: str
    sender: str
    created_at: str
    message: str = ""

    @classmethod
    def read(cls, r: Resource) -> Text:
        """From a ``texts`` resource."""
        a = r.attributes
        return cls(
            r.id,
            text_of(a, "status"),
            text_of(a, "error"),
            text_of(a, "target"),
            text_of(a, "from"),
            text_of(a, "created-at"),
            text_of(a, "message"),
        )

    @property
    def reading(self) -> Reading:
        """What its status word says."""
        return read_text(self.status)


@dataclass(frozen=True, slots=True)
class BulkMessage:
    """A message posted to many individuals' and groups' channels."""

    id: str
    draft: bool | None
    posted_time: str
    individual_ids: tuple[str, ...]
    group_ids: tuple[str, ...]

    @classmethod
    def read(cls, r: Resource) -> BulkMessage:
        """From a ``messaging-bulk-messages`` resource."""
        a = r.attributes
        return cls(
            r.id,
            flag_of(a, "draft"),
            text_of(a, "posted-time"),
            ids_of(a, "individual-ids"),
            ids_of(a, "individual-group-ids"),
        )

    @property
    def reading(self) -> Reading:
        """What its draft flag and posted time say."""
        return read_bulk(draft=self.draft, posted_time=self.posted_time)


@dataclass(frozen=True, slots=True)
class Multicast:
    """A template broadcast to an audience."""

    id: str
    status: str
    template_id: str

    @classmethod
    def read(cls, r: Resource) -> Multicast:
        """From a ``multicasts`` resource."""
        a = r.attributes
        return cls(r.id, text_of(a, "status"), text_of(a, "template-id"))

    @property
    def reading(self) -> Reading:
        """What its status word says."""
        return read_multicast(self.status)


@dataclass(frozen=True, slots=True)
class Email:
    """An e-mail (a draft until it is sent)."""

    id: str
    status: str
    result: str

    @classmethod
    def read(cls, r: Resource) -> Email:
        """From a ``user-emails`` resource."""
        a = r.attributes
        return cls(r.id, text_of(a, "status"), text_of(a, "result"))

    @property
    def reading(self) -> Reading:
        """What its status word says."""
        return read_email(self.status)
