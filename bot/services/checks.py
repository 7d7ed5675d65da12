"""/check: WhatsApp number checks through NusaSMS, and routing their callback results.

NusaSMS takes at most 100 numbers of 8–14 digits per ``wa_phone_check`` request, so longer
lists are split into batches. Each batch is stored as a :class:`storage.models.PhoneCheck`
before it is submitted (a fast callback must find it) and removed if the submission fails.
Results arrive later on the bot's callback URL with no reference to the request, so they are
matched by number to the open checks that asked (every chat that asked gets its answer).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.services.accounts import Accounts
from bot.services.errors import BadInput, NotAllowed
from bot.services.phones import normalise
from providers.errors import ProviderError
from providers.nusasms import PHONE_CHECK_MAX, PHONE_CHECK_NUMBER
from providers.nusasms_adapter import PhoneChecker
from providers.nusasms_checks import PhoneCheckResult, parse_phone_check_callback
from providers.registry import REGISTRY
from storage.phone_checks import PhoneCheckStore
from storage.repo import Repository

log = logging.getLogger(__name__)

MAX_NUMBERS = 1000
PROVIDER = "nusasms"


@dataclass(frozen=True, slots=True)
class CheckSubmission:
    """What /check handed to NusaSMS; ``failure`` says why the rest was not submitted."""

    numbers: list[str]
    submitted: list[str]
    requests: int
    callback: bool
    failure: str = ""


@dataclass(frozen=True, slots=True)
class CheckAnswer:
    """Results one callback brought for one chat's check."""

    chat_id: int
    check_id: int
    results: list[PhoneCheckResult]
    answered: int
    total: int


@dataclass(slots=True)
class _Normalised:
    numbers: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def check_numbers(raw: Sequence[str], country: str | None) -> list[str]:
    """Normalised, de-duplicated digits ready for NusaSMS, or ``BadInput`` listing bad ones."""
    items = [r.strip() for r in raw if r.strip()]
    if not items:
        raise BadInput("Usage: /check &lt;number&gt;[,&lt;number&gt;…]")
    if len(items) > MAX_NUMBERS:
        raise BadInput(f"At most {MAX_NUMBERS} numbers per /check ({len(items)} given).")
    found = _Normalised()
    for item in items:
        try:
            digits = normalise(item, country=country).digits
        except BadInput as exc:
            found.errors.append(exc.message)
            continue
        if not PHONE_CHECK_NUMBER.match(digits):
            found.errors.append(f"“{item}” has {len(digits)} digits; NusaSMS checks 8 to 14.")
            continue
        found.numbers.append(digits)
    if found.errors:
        shown = "\n".join(found.errors[:5])
        more = f"\n…and {len(found.errors) - 5} more." if len(found.errors) > 5 else ""
        raise BadInput(f"Nothing was checked:\n{shown}{more}")
    return list(dict.fromkeys(found.numbers))


class PhoneChecks:
    """WhatsApp number-check use-cases."""

    def __init__(self, store: PhoneCheckStore, accounts: Accounts, repo: Repository) -> None:
        self._store = store
        self._accounts = accounts
        self._repo = repo

    async def submit(
        self,
        chat_id: int,
        raw: Sequence[str],
        *,
        country: str | None,
        callback_url: str | None,
        actor: int,
    ) -> CheckSubmission:
        """Check numbers in batches of 100; results come later to ``callback_url``.

        Raises:
            BadInput: for bad numbers; NotConnected: without NusaSMS;
            ProviderError: when the very first batch is refused (nothing was submitted).

        """
        numbers = check_numbers(raw, country)
        adapter = await self._accounts.adapter(chat_id, REGISTRY[PROVIDER])
        if not isinstance(adapter, PhoneChecker):
            raise NotAllowed("This provider cannot check WhatsApp numbers.")
        submitted: list[str] = []
        requests = 0
        for start in range(0, len(numbers), PHONE_CHECK_MAX):
            batch = numbers[start : start + PHONE_CHECK_MAX]
            check = await self._store.add(chat_id, batch, actor=actor)
            assert check.id is not None
            try:
                await adapter.phone_check(batch, callback_url=callback_url)
            except ProviderError as exc:
                await self._store.remove(check.id)
                if not submitted:
                    raise
                return CheckSubmission(
                    numbers, submitted, requests, bool(callback_url), failure=exc.message
                )
            submitted.extend(batch)
            requests += 1
        await self._repo.audit(
            chat_id, actor, "check", f"{len(submitted)} number(s) in {requests} request(s)"
        )
        return CheckSubmission(numbers, submitted, requests, bool(callback_url))

    async def receive(self, body: Any) -> list[CheckAnswer]:
        """Store the results of one callback; what each asking chat should be told."""
        results = parse_phone_check_callback(body)
        if not results:
            log.warning("a phone-check callback carried no result this bot can read")
            return []
        by_number = {r.number: r for r in results}
        answers = {r.number: {"on_whatsapp": r.on_whatsapp, "status": r.status} for r in results}
        merged = await self._store.merge(answers)
        if not merged:
            log.info("phone-check results for %d numbers matched no open check", len(results))
        out = []
        for m in merged:
            assert m.check.id is not None
            out.append(
                CheckAnswer(
                    chat_id=m.check.chat_id,
                    check_id=m.check.id,
                    results=[by_number[n] for n in m.check.numbers if n in m.answered],
                    answered=len(m.check.results),
                    total=len(m.check.numbers),
                )
            )
        return out
