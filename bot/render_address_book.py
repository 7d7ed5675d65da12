"""Chat text (HTML) for /contacts, /groups and /activity. Everything is escaped."""

from __future__ import annotations

from html import escape

from bot.render import local_time
from bot.services.address_book import (
    ActivityListing,
    ContactAdded,
    ContactListing,
    ContactsDeleted,
    GroupListing,
)
from providers.registry import ProviderSpec

ACTIVITY_SHOWN = 20
DESCRIPTION_SHOWN = 200


def _kinds(spec: ProviderSpec) -> set[str]:
    return {kind for c in spec.channels for kind in c.recipient_kinds}


def contact_page(listing: ContactListing) -> str:
    """One page of contacts, with the page number and how to see the next one."""
    spec, page = listing.provider, listing.page
    book = f"the {escape(spec.display)} address book"
    if not page.items:
        if page.page == 1:
            return (
                f"There are no contacts in {book} yet. An admin can add one with "
                "/contacts add &lt;name&gt; &lt;number&gt;."
            )
        total = f" ({page.total} contacts in all)" if page.total is not None else ""
        return f"Page {page.page} of {book} is empty{total}. /contacts 1 shows the first page."
    total = f" · {page.total} contacts" if page.total is not None else ""
    lines = [f"<b>{escape(spec.display)} contacts</b> · page {page.page}{total}"]
    lines.extend(
        f"<code>{c.id}</code> {escape(c.name) or '(no name)'} · <code>{escape(c.number)}</code>"
        for c in page.items
    )
    if page.has_more:
        lines.append(f"Next page: /contacts {page.page + 1}")
    if "contact" in _kinds(spec):
        lines.append(f"Send to a contact with /send {spec.name} contact:&lt;id&gt; &lt;text&gt;.")
    return "\n".join(lines)


def contact_added(added: ContactAdded) -> str:
    """What was added, with its id when the provider returned it."""
    spec = added.provider
    what = f"{escape(added.name)} (<code>{escape(added.number)}</code>)"
    text = f"Added {what} to the {escape(spec.display)} address book"
    if added.contact is None:
        return text + "; /contacts shows its id."
    text += f" as contact <code>{added.contact.id}</code>."
    if "contact" in _kinds(spec):
        text += f" Send to it with contact:{added.contact.id}."
    return text


def contacts_deleted(deleted: ContactsDeleted) -> str:
    """Which contacts were deleted."""
    count = len(deleted.ids)
    ids = ", ".join(f"<code>{i}</code>" for i in deleted.ids)
    noun = "contact" if count == 1 else "contacts"
    return (
        f"Deleted {count} {noun} from the {escape(deleted.provider.display)} address book: {ids}."
    )


def group_list(listing: GroupListing) -> str:
    """The contact groups with their sizes."""
    spec = listing.provider
    if not listing.groups:
        return f"There are no contact groups in the {escape(spec.display)} address book."
    lines = [f"<b>{escape(spec.display)} contact groups</b>"]
    for g in listing.groups:
        size = "" if g.size is None else f" · {g.size} contact{'' if g.size == 1 else 's'}"
        lines.append(f"<code>{g.id}</code> {escape(g.name) or '(no name)'}{size}")
    if "group" in _kinds(spec):
        lines.append(f"Send to a group with /send {spec.name} group:&lt;id&gt; &lt;text&gt;.")
    return "\n".join(lines)


def activity_list(listing: ActivityListing, zone: str) -> str:
    """The account's recent activity, times in the chat's time zone."""
    spec = listing.provider
    if not listing.entries:
        return f"No recent activity on the {escape(spec.display)} account."
    lines = [f"<b>{escape(spec.display)} activity</b>"]
    for entry in listing.entries[:ACTIVITY_SHOWN]:
        when = local_time(entry.at, zone) if entry.at else "—"
        text = entry.description
        if len(text) > DESCRIPTION_SHOWN:
            text = text[: DESCRIPTION_SHOWN - 1] + "…"
        parts = [f"<code>{escape(entry.action)}</code>" if entry.action else "", escape(text)]
        lines.append(f"{when} {' '.join(p for p in parts if p)}".rstrip())
    more = len(listing.entries) - ACTIVITY_SHOWN
    if more > 0:
        lines.append(f"…and {more} older entries.")
    return "\n".join(lines)
