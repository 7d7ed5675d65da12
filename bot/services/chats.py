"""Chat settings and team roles: default route, time zone, country, /role."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bot.services.errors import BadInput, NotAllowed, echo
from bot.services.phones import valid_country
from bot.services.quiet import OFF, QuietHours
from i18n import ENGLISH, LANGUAGES, N_, _, supported
from providers.registry import Route, UnknownRoute, example_route, parse_route
from storage.models import Chat, Member, Role
from storage.repo import Repository

PRIVATE = "private"
ROLES_ARE_FOR_GROUPS = N_("Roles are for group chats; in a private chat you can do it all.")


def route_from(text: str) -> Route:
    """Parse a route typed by a user, as ``BadInput`` when unknown."""
    try:
        return parse_route(text)
    except UnknownRoute as exc:
        raise BadInput(escape(str(exc))) from exc


MAX_CHAIN = 5  # routes in one failover chain


def route_chain(text: str) -> list[Route]:
    """``route[,route...]``: an ordered failover chain (the first route is the default).

    Raises:
        BadInput: an unknown route, a route named twice, or more than :data:`MAX_CHAIN`.

    """
    parts = [p.strip() for p in text.split(",")]
    if not all(parts):
        raise BadInput(_("A route list is written route,route with nothing between the commas."))
    routes = [route_from(p) for p in parts]
    names = [str(r) for r in routes]
    if len(set(names)) != len(names):
        raise BadInput(_("A route is named twice in the list."))
    if len(routes) > MAX_CHAIN:
        raise BadInput(_("A failover chain has at most {limit} routes.").format(limit=MAX_CHAIN))
    return routes


def chain_text(routes: list[Route]) -> str:
    """The stored form of a chain."""
    return ",".join(str(r) for r in routes)


def valid_timezone(name: str) -> str:
    """An IANA time zone name, or ``BadInput`` with an example."""
    candidate = name.strip()
    if candidate.upper() == "UTC":
        return "UTC"
    if candidate not in available_timezones():
        raise BadInput(
            _("“{name}” is not a time zone. Use an Area/City name like Asia/Jakarta.").format(
                name=echo(name)
            )
        )
    try:
        ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise BadInput(_("“{name}” is not a time zone.").format(name=echo(name))) from exc
    return candidate


class Chats:
    """Chat-level settings and who may do what."""

    def __init__(self, repo: Repository, *, default_language: str = ENGLISH) -> None:
        self._repo = repo
        self.default_language = default_language

    async def stored_role(self, chat_id: int, user_id: int) -> Role | None:
        """The role /role gave this user in this chat, if any."""
        return await self._repo.get_role(chat_id, user_id)

    async def members(self, chat_id: int) -> list[Member]:
        """Every explicit role in a chat."""
        return await self._repo.list_members(chat_id)

    async def title(self, chat_id: int) -> str:
        """The chat's title as last seen, else its id."""
        chat = await self._repo.get_chat(chat_id)
        return chat.title if chat is not None and chat.title else str(chat_id)

    async def register(self, chat_id: int, *, kind: str, title: str) -> Chat:
        """The chat's settings, creating them on first contact."""
        return await self._repo.ensure_chat(chat_id, kind=kind, title=title)

    async def default_route(self, chat: Chat) -> Route:
        """The chat's default route (the first of its chain), or ``BadInput`` saying how."""
        return (await self.default_chain(chat))[0]

    async def default_chain(self, chat: Chat) -> list[Route]:
        """The chat's default route and its failover routes, in order.

        Raises:
            BadInput: the chat has none, saying how to set one.

        """
        if not chat.default_route:
            example = example_route()
            raise BadInput(
                _(
                    "This chat has no default route. Name one (/send {example} …) "
                    "or set it with /use {example}."
                ).format(example=example)
            )
        return route_chain(chat.default_route)

    async def use_route(self, chat_id: int, text: str, *, actor: int) -> list[Route]:
        """Set the chat's default route, or an ordered failover chain of routes."""
        routes = route_chain(text)
        await self._repo.update_chat(chat_id, default_route=chain_text(routes))
        await self._repo.audit(chat_id, actor, "use", chain_text(routes))
        return routes

    async def set_timezone(self, chat_id: int, name: str, *, actor: int) -> str:
        """Set the chat's time zone for schedules and display."""
        zone = valid_timezone(name)
        await self._repo.update_chat(chat_id, timezone=zone)
        await self._repo.audit(chat_id, actor, "timezone", zone)
        return zone

    async def set_country(self, chat_id: int, code: str, *, actor: int) -> str:
        """Set the region used for numbers written without a country code."""
        region = valid_country(code)
        await self._repo.update_chat(chat_id, country=region)
        await self._repo.audit(chat_id, actor, "country", region)
        return region

    async def set_quiet(self, chat_id: int, text: str, *, actor: int) -> QuietHours | None:
        """Set the chat's quiet hours (``HH:MM-HH:MM``), or turn them off (``off``).

        Raises:
            BadInput: a window that is not two valid, different times of day.

        """
        window = None if text.strip().lower() == OFF else QuietHours.parse(text)
        await self._repo.update_chat(chat_id, quiet_hours=str(window) if window else None)
        await self._repo.audit(chat_id, actor, "quiet", str(window) if window else OFF)
        return window

    def language(self, chat: Chat | None) -> str:
        """The language ``chat`` is answered in: its /lang, else DEFAULT_LANGUAGE."""
        if chat is None or chat.language is None or not supported(chat.language):
            return self.default_language
        return chat.language

    async def language_of(self, chat_id: int) -> str:
        """The language of the chat with this id (DEFAULT_LANGUAGE for one never seen)."""
        return self.language(await self._repo.get_chat(chat_id))

    async def set_language(self, chat_id: int, code: str, *, actor: int) -> str:
        """Set the chat's language (``en``, ``id``).

        Raises:
            BadInput: a language the bot does not speak, naming those it does.

        """
        wanted = code.strip().lower()
        if not supported(wanted):
            known = ", ".join(f"{key} ({name})" for key, name in LANGUAGES.items())
            raise BadInput(
                _("“{code}” is not a language I speak. Use one of: {known}.").format(
                    code=echo(code), known=known
                )
            )
        await self._repo.update_chat(chat_id, language=wanted)
        await self._repo.audit(chat_id, actor, "lang", wanted)
        return wanted

    async def role_of(self, chat: Chat, user_id: int, *, is_chat_admin: bool) -> Role:
        """A user's role in a chat.

        Everyone is admin of their private chat; in groups /role decides, else Telegram
        admins are admins and other members operators.
        """
        if chat.kind == PRIVATE:
            return Role.ADMIN
        stored = await self._repo.get_role(chat.id, user_id)
        if stored is not None:
            return stored
        return Role.ADMIN if is_chat_admin else Role.OPERATOR

    async def set_role(
        self, chat: Chat, *, user_id: int, username: str, role_name: str, actor: int
    ) -> Role:
        """Give a member a role (group chats only)."""
        if chat.kind == PRIVATE:
            raise NotAllowed(_(ROLES_ARE_FOR_GROUPS))
        try:
            role = Role(role_name.strip().lower())
        except ValueError as exc:
            raise BadInput(
                _("“{role}” is not a role. Use admin, operator or viewer.").format(
                    role=echo(role_name)
                )
            ) from exc
        await self._repo.set_role(chat.id, user_id, role=role, username=username, actor=actor)
        await self._repo.audit(chat.id, actor, "role", f"{user_id}={role.value}")
        return role

    async def find_member(self, chat_id: int, username: str) -> int | None:
        """The id of a member known by @username in this chat."""
        member = await self._repo.find_member(chat_id, username.lstrip("@"))
        return member.user_id if member else None
