"""/check: WhatsApp number checks through a provider that offers them, and their results.

The provider is found by capability (:func:`providers.number_checks.number_check_providers`);
its rules (numbers per request, digits per number) come from there too, and longer lists are
split into batches. Each batch is stored as a :class:`storage.models.PhoneCheck` before it is
submitted (a fast callback must find it) and removed if the submission fails. Results arrive
later on the bot's callback URL with no reference to the request, so they are matched by
number to the open checks that asked (every chat that asked gets its answer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.services.accounts import Accounts
from bot.services.errors import BadInput, NotAllowed, echo
from bot.services.phones import normalise
from i18n import _
from providers.base import PhoneChecker, PhoneCheckResult
from providers.errors import ProviderError
from providers.number_checks import NumberCheck, number_check_providers, read_results
from providers.registry import ProviderSpec
from storage.phone_checks import PhoneCheckStore
from storage.repo import Repository

log = logging.getLogger(__name__)

MAX_NUMBERS = 1000


@dataclass(frozen=True, slots=True)
class CheckSubmission:
    """What /check handed to ``provider``; ``failure`` says why the rest was not submitted."""

    provider: str  # the provider's display name
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


def check_numbers(
    raw: Sequence[str], country: str | None, *, spec: ProviderSpec, rules: NumberCheck
) -> list[str]:
    """Normalised, de-duplicated digits ready for the provider, or ``BadInput`` listing bad ones.

    Args:
        raw: the numbers as typed.
        country: the chat's country, for numbers without a country code.
        spec: the provider that will check them (named in refusals).
        rules: its digit range.

    """
    items = [r.strip() for r in raw if r.strip()]
    if not items:
        raise BadInput(_("Usage: /check &lt;number&gt;[,&lt;number&gt;…]"))
    if len(items) > MAX_NUMBERS:
        raise BadInput(
            _("At most {limit} numbers per /check ({given} given).").format(
                limit=MAX_NUMBERS, given=len(items)
            )
        )
    found = _Normalised()
    for item in items:
        try:
            digits = normalise(item, country=country).digits
        except BadInput as exc:
            found.errors.append(exc.message)
            continue
        if not rules.accepts(digits):
            found.errors.append(
                _("“{number}” has {count} digits; {provider} checks {low} to {high}.").format(
                    number=echo(item),
                    count=len(digits),
                    provider=spec.display,
                    low=rules.min_digits,
                    high=rules.max_digits,
                )
            )
            continue
        found.numbers.append(digits)
    if found.errors:
        shown = "\n".join(found.errors[:5])
        if len(found.errors) > 5:
            shown += "\n" + _("…and {count} more.").format(count=len(found.errors) - 5)
        raise BadInput(_("Nothing was checked:") + "\n" + shown)
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
        callback_url: Callable[[str], str | None],
        actor: int,
    ) -> CheckSubmission:
        """Check numbers in the provider's batches; results come later to its callback URL.

        Args:
            chat_id: the asking chat.
            raw: the numbers as typed.
            country: the chat's country, for numbers without a country code.
            callback_url: provider name → where it posts results (None outside webhook mode).
            actor: the asking user.

        Raises:
            BadInput: for bad numbers; NotConnected: without a provider that checks numbers;
            NotAllowed: when no provider offers the check;
            ProviderError: when the very first batch is refused (nothing was submitted).

        """
        spec, rules = await self._provider(chat_id)
        numbers = check_numbers(raw, country, spec=spec, rules=rules)
        adapter = await self._accounts.adapter(chat_id, spec)
        if not isinstance(adapter, PhoneChecker):
            raise NotAllowed(_("This provider cannot check WhatsApp numbers."))
        url = callback_url(spec.name)
        submitted: list[str] = []
        requests = 0
        for start in range(0, len(numbers), rules.batch_size):
            batch = numbers[start : start + rules.batch_size]
            check = await self._store.add(chat_id, batch, actor=actor)
            assert check.id is not None
            try:
                await adapter.phone_check(batch, callback_url=url)
            except ProviderError as exc:
                await self._store.remove(check.id)
                if not submitted:
                    raise
                return CheckSubmission(
                    spec.display, numbers, submitted, requests, bool(url), failure=exc.message
                )
            submitted.extend(batch)
            requests += 1
        await self._repo.audit(
            chat_id,
            actor,
            "check",
            _("{count} number(s) in {requests} request(s)").format(
                count=len(submitted), requests=requests
            ),
        )
        return CheckSubmission(spec.display, numbers, submitted, requests, bool(url))

    async def _provider(self, chat_id: int) -> tuple[ProviderSpec, NumberCheck]:
        """The first provider offering the check that this chat has connected, else the first.

        Raises:
            NotAllowed: when no provider offers number checks.

        """
        offered = number_check_providers()
        if not offered:
            raise NotAllowed(_("No provider this bot knows can check WhatsApp numbers."))
        if len(offered) > 1:
            for spec, rules in offered:
                if await self._accounts.is_connected(chat_id, spec.name):
                    return spec, rules
        return offered[0]

    async def receive(self, provider: str, body: Any) -> list[CheckAnswer]:
        """Store the results of one provider's callback; what each asking chat should be told."""
        results = read_results(provider, body)
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
