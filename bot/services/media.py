"""Which files may go out as WhatsApp media, checked before any download or provider call.

What a channel takes (file types and their largest sizes) is data on the route's channel
(:attr:`providers.registry.ChannelSpec.media_limits`), filled from the provider's own table. A
file is judged twice: by what Telegram says about it (name, MIME type, size) before it is
downloaded, and by its bytes afterwards (the size Telegram reported may be missing, and a
renamed file must not pass as a picture).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.services.errors import BadInput, echo
from i18n import _
from providers.base import Media

KB = 1024

MIME_TO_EXTENSION = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "application/pdf": "pdf",
    "video/mp4": "mp4",
    "video/webm": "webm",
}
EXTENSION_TO_MIME = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "pdf": "application/pdf",
    "mp4": "video/mp4",
    "webm": "video/webm",
}


def allowed_summary(limits: Mapping[str, int]) -> str:
    """What ``limits`` allows, as ``jpg, jpeg, png, pdf up to 512 KB; mp4, webm up to 1 MB``."""
    by_limit: dict[int, list[str]] = {}
    for ext, limit in limits.items():
        by_limit.setdefault(limit, []).append(ext)
    return "; ".join(
        _("{extensions} up to {size}").format(extensions=", ".join(exts), size=size_text(lim))
        for lim, exts in by_limit.items()
    )


def size_text(size: int) -> str:
    """A byte count as people read it: ``512 KB``, ``1 MB``, ``1.4 MB``."""
    if size >= 1024 * KB:
        value = size / (1024 * KB)
        return f"{value:.0f} MB" if value.is_integer() else f"{value:.1f} MB"
    return f"{size / KB:.0f} KB" if size % KB == 0 or size >= 10 * KB else f"{size / KB:.1f} KB"


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """A file judged sendable from its description; its bytes are checked after download."""

    file_name: str
    extension: str
    limit: int
    mime_type: str


def extension_of(file_name: str | None, mime_type: str | None) -> str:
    """The type of a file: its name's extension, else what its MIME type stands for."""
    if file_name and "." in file_name:
        return file_name.rsplit(".", 1)[1].lower()
    return MIME_TO_EXTENSION.get((mime_type or "").lower(), "")


def plan_media(
    *,
    file_name: str | None,
    mime_type: str | None,
    size: int | None,
    limits: Mapping[str, int],
    what: str = "file",
) -> MediaPlan:
    """Judge a file by its description before downloading it.

    Args:
        file_name: the file's name as sent, if any.
        mime_type: its MIME type as Telegram reports it, if any.
        size: its size as Telegram reports it, if known.
        limits: extension → largest size the route's channel takes (``media_limits``).
        what: how the chat calls the file when it has no name (``photo``, ``document``).

    Raises:
        BadInput: saying which type or size rule it breaks and what is allowed.

    """
    ext = extension_of(file_name, mime_type)
    # BadInput messages are HTML; a file name is typed by whoever sent the file.
    values = {
        "name": echo(file_name or ""),
        "what": _(what),
        "ext": echo(ext),
        "type": echo(mime_type) if mime_type else _("unknown"),
        "allowed": allowed_summary(limits),
    }
    if ext not in limits:
        if file_name and ext:
            refusal = _(
                "“{name}” is a .{ext} file; WhatsApp media can be {allowed}. Nothing was sent."
            )
        elif file_name:
            refusal = _(
                "“{name}” is of type {type}; WhatsApp media can be {allowed}. Nothing was sent."
            )
        elif ext:
            refusal = _(
                "This {what} is a .{ext} file; WhatsApp media can be {allowed}. Nothing was sent."
            )
        else:
            refusal = _(
                "This {what} is of type {type}; WhatsApp media can be {allowed}. Nothing was sent."
            )
        raise BadInput(refusal.format(**values))
    limit = limits[ext]
    if size is not None and size > limit:
        if file_name:
            too_large = _(
                "“{name}” is {size}; WhatsApp media of type {ext} may be at most {limit}. "
                "Nothing was sent."
            )
        else:
            too_large = _(
                "This {what} is {size}; WhatsApp media of type {ext} may be at most {limit}. "
                "Nothing was sent."
            )
        raise BadInput(too_large.format(**values, size=size_text(size), limit=size_text(limit)))
    name = file_name or f"{what}.{ext}"
    return MediaPlan(name, ext, limit, EXTENSION_TO_MIME[ext])


def accept_media(plan: MediaPlan, content: bytes) -> Media:
    """The downloaded file as :class:`Media`, once its size and content match the plan.

    Raises:
        BadInput: when it is too large, empty, or its bytes are not of its type.

    """
    name = echo(plan.file_name)
    if not content:
        raise BadInput(_("“{name}” is empty. Nothing was sent.").format(name=name))
    if len(content) > plan.limit:
        raise BadInput(
            _(
                "“{name}” is {size}; WhatsApp media of type {ext} may be at most {limit}. "
                "Nothing was sent."
            ).format(
                name=name,
                size=size_text(len(content)),
                ext=plan.extension,
                limit=size_text(plan.limit),
            )
        )
    if not looks_like(plan.extension, content):
        raise BadInput(
            _(
                "“{name}” is named .{ext} but its content is not a {kind} file. Nothing was sent."
            ).format(name=name, ext=plan.extension, kind=plan.extension.upper())
        )
    return Media(file_name=plan.file_name, content=content, mime_type=plan.mime_type)


def looks_like(extension: str, content: bytes) -> bool:
    """Whether the file's first bytes match its type's signature."""
    if extension in ("jpg", "jpeg"):
        return content.startswith(b"\xff\xd8\xff")
    if extension == "png":
        return content.startswith(b"\x89PNG\r\n\x1a\n")
    if extension == "pdf":
        return b"%PDF-" in content[:1024]  # the header may follow a few junk bytes
    if extension == "mp4":
        return b"ftyp" in content[4:12]
    if extension == "webm":
        return content.startswith(b"\x1a\x45\xdf\xa3")
    return False
