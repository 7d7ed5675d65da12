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
from i18n import _, ngettext
from providers.registry import ProviderSpec

ACTIVITY_SHOWN = 20
DESCRIPTION_SHOWN = 200


def _kinds(spec: ProviderSpec) -> set[str]:
    return {kind for c in spec.channels for kind in c.recipient_kinds}


def contact_page(listing: ContactListing) -> str:
    """One page of contacts, with the page number and how to see the next one."""
    spec, page = listing.provider, listing.page
    values = {"provider": escape(spec.display), "page": page.page, "total": page.total}
    if not page.items:
        if page.page == 1:
            return _(
                "There are no contacts in the {provider} address book yet. An admin can add "
                "one with /contacts add &lt;name&gt; &lt;number&gt;."
            ).format(**values)
        if page.total is not None:
            empty = _(
                "Page {page} of the {provider} address book is empty ({total} contacts in "
                "all). /contacts 1 shows the first page."
            )
        else:
            empty = _(
                "Page {page} of the {provider} address book is empty. /contacts 1 shows the "
                "first page."
            )
        return empty.format(**values)
    if page.total is not None:
        head = _("<b>{provider} contacts</b> · page {page} · {total} contacts")
    else:
        head = _("<b>{provider} contacts</b> · page {page}")
    lines = [head.format(**values)]
    lines.extend(
        f"<code>{c.id}</code> {escape(c.name) or _('(no name)')} · <code>{escape(c.number)}</code>"
        for c in page.items
    )
    if page.has_more:
        lines.append(_("Next page: /contacts {page}").format(page=page.page + 1))
    if "contact" in _kinds(spec):
        lines.append(
            _("Send to a contact with /send {provider} contact:&lt;id&gt; &lt;text&gt;.").format(
                provider=spec.name
            )
        )
    return "\n".join(lines)


def contact_added(added: ContactAdded) -> str:
    """What was added, with its id when the provider returned it."""
    spec = added.provider
    values = {
        "name": escape(added.name),
        "number": escape(added.number),
        "provider": escape(spec.display),
        "id": added.contact.id if added.contact is not None else "",
    }
    if added.contact is None:
        text = _(
            "Added {name} (<code>{number}</code>) to the {provider} address book; /contacts "
            "shows its id."
        )
    elif "contact" in _kinds(spec):
        text = _(
            "Added {name} (<code>{number}</code>) to the {provider} address book as contact "
            "<code>{id}</code>. Send to it with contact:{id}."
        )
    else:
        text = _(
            "Added {name} (<code>{number}</code>) to the {provider} address book as contact "
            "<code>{id}</code>."
        )
    return text.format(**values)


def contacts_deleted(deleted: ContactsDeleted) -> str:
    """Which contacts were deleted."""
    count = len(deleted.ids)
    ids = ", ".join(f"<code>{i}</code>" for i in deleted.ids)
    return ngettext(
        "Deleted {count} contact from the {provider} address book: {ids}.",
        "Deleted {count} contacts from the {provider} address book: {ids}.",
        count,
    ).format(count=count, provider=escape(deleted.provider.display), ids=ids)


def group_list(listing: GroupListing) -> str:
    """The contact groups with their sizes."""
    spec = listing.provider
    if not listing.groups:
        return _("There are no contact groups in the {provider} address book.").format(
            provider=escape(spec.display)
        )
    lines = [_("<b>{provider} contact groups</b>").format(provider=escape(spec.display))]
    for g in listing.groups:
        size = (
            ""
            if g.size is None
            else " · "
            + ngettext("{count} contact", "{count} contacts", g.size).format(count=g.size)
        )
        lines.append(f"<code>{g.id}</code> {escape(g.name) or _('(no name)')}{size}")
    if "group" in _kinds(spec):
        lines.append(
            _("Send to a group with /send {provider} group:&lt;id&gt; &lt;text&gt;.").format(
                provider=spec.name
            )
        )
    return "\n".join(lines)


def activity_list(listing: ActivityListing, zone: str) -> str:
    """The account's recent activity, times in the chat's time zone."""
    spec = listing.provider
    if not listing.entries:
        return _("No recent activity on the {provider} account.").format(
            provider=escape(spec.display)
        )
    lines = [_("<b>{provider} activity</b>").format(provider=escape(spec.display))]
    for entry in listing.entries[:ACTIVITY_SHOWN]:
        when = local_time(entry.at, zone) if entry.at else "—"
        text = entry.description
        if len(text) > DESCRIPTION_SHOWN:
            text = text[: DESCRIPTION_SHOWN - 1] + "…"
        parts = [f"<code>{escape(entry.action)}</code>" if entry.action else "", escape(text)]
        lines.append(f"{when} {' '.join(p for p in parts if p)}".rstrip())
    more = len(listing.entries) - ACTIVITY_SHOWN
    if more > 0:
        lines.append(_("…and {count} older entries.").format(count=more))
    return "\n".join(lines)
