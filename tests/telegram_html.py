"""What Telegram accepts from a bot: its HTML subset and its length limits, checked strictly.

The offline fake (``tests.fakes.telegram``) parses HTML as leniently as needed to render
texts; :func:`html_problems` is the strict reading of the Bot API's rules ("Formatting
options"): only the listed tags and attributes, balanced; only ``&lt;``, ``&gt;``, ``&amp;``,
``&quot;`` and numeric entities; no bare ``<``, ``>`` or ``&``; at most 4,096 characters once
parsed.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.fakes.telegram import Call, utf16_len

# Telegram's HTML: these tags, with these attributes, and nothing else.
TAGS: dict[str, set[str]] = {
    **{t: set() for t in ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del")},
    "tg-spoiler": set(),
    "span": {"class"},
    "a": {"href"},
    "code": {"class"},
    "pre": set(),
    "blockquote": {"expandable"},
}
ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")
TEXT_LIMIT, ANSWER_LIMIT, CAPTION_LIMIT = 4096, 200, 1024


class TelegramHTML(HTMLParser):
    """Checks a text against Telegram's HTML rules; ``problems`` says what breaks them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag not in TAGS:
            self.problems.append(f"tag <{tag}>")
        elif set(given) - TAGS[tag]:
            self.problems.append(f"attributes {sorted(given)} on <{tag}>")
        elif tag == "span" and given.get("class") != "tg-spoiler":
            self.problems.append("<span> without class tg-spoiler")
        elif tag == "a" and not given.get("href"):
            self.problems.append("<a> without href")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")

    def handle_data(self, data: str) -> None:
        self.text += data

    def handle_comment(self, data: str) -> None:
        self.problems.append("a comment")

    def handle_decl(self, decl: str) -> None:
        self.problems.append("a declaration")

    def handle_pi(self, data: str) -> None:
        self.problems.append("a processing instruction")

    def unknown_decl(self, data: str) -> None:
        self.problems.append("a declaration")


def html_problems(source: str) -> list[str]:
    """Why Telegram would refuse ``source`` in HTML parse mode (empty when it is valid)."""
    outside_tags = re.sub(r"<[^<>]*>", "", source)
    problems = []
    if re.search(r"[<>]", outside_tags):
        problems.append("a bare < or >")
    if outside_tags.count("&") != len(ENTITY.findall(outside_tags)):
        problems.append("a bare & or an entity Telegram does not know")
    parser = TelegramHTML()
    parser.feed(source)
    parser.close()
    problems += parser.problems
    if parser.stack:
        problems.append(f"unclosed <{parser.stack[-1]}>")
    if utf16_len(parser.text.strip()) > TEXT_LIMIT:
        problems.append(f"{utf16_len(parser.text.strip())} characters")
    return problems


def sent_problems(call: Call) -> list[str]:
    """What is wrong with one Bot API call the bot made (nothing for calls it may fail)."""
    params = call.params
    if call.method in ("sendMessage", "editMessageText"):
        text = str(params.get("text", ""))
        html = str(params.get("parse_mode", "")).lower() == "html"
        problems = html_problems(text) if html else []
        if not html and utf16_len(text) > TEXT_LIMIT:
            problems.append("too long")
        if call.method == "sendMessage" and not call.ok:
            problems.append(f"refused: {call.response.get('description')}")
        return problems
    if call.method == "sendDocument":
        caption = str(params.get("caption", ""))
        return [] if utf16_len(caption) <= CAPTION_LIMIT else ["caption too long"]
    if call.method == "answerCallbackQuery":
        text = str(params.get("text", ""))
        return [] if utf16_len(text) <= ANSWER_LIMIT else ["answer too long"]
    return []
