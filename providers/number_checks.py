"""WhatsApp number checks: which providers offer one, their batch rules and callback readers.

A provider offers the check by declaring ``Capabilities.number_check`` on its adapter class
(which then implements :class:`providers.base.PhoneChecker`) and adding its line to
:data:`NUMBER_CHECKS`: how many numbers one request takes, how many digits a number may have,
and the reader of the results it posts back to the callback URL. The bot finds the providers
by capability (:func:`number_check_providers`) and never names one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from providers import nusasms, nusasms_checks
from providers.base import PhoneCheckResult
from providers.receipts import InvalidCallback
from providers.registry import REGISTRY, ProviderSpec

# The callback kind results arrive as: ``/callbacks/<provider>/phone_check/<secret>``.
KIND = "phone_check"

# Reads the results in one callback body (an empty list when it holds none).
CheckReader = Callable[[Any], list[PhoneCheckResult]]


@dataclass(frozen=True, slots=True)
class NumberCheck:
    """One provider's rules for number checks and how to read its results."""

    batch_size: int  # numbers per request; longer lists are split
    min_digits: int
    max_digits: int
    read: CheckReader

    def accepts(self, digits: str) -> bool:
        """Whether the provider checks a number of these digits."""
        return digits.isdigit() and self.min_digits <= len(digits) <= self.max_digits


# Provider name → its number-check rules; a provider whose adapter declares
# ``number_check`` adds its line here.
NUMBER_CHECKS: dict[str, NumberCheck] = {
    "nusasms": NumberCheck(
        batch_size=nusasms.PHONE_CHECK_MAX,
        min_digits=nusasms.PHONE_CHECK_MIN_DIGITS,
        max_digits=nusasms.PHONE_CHECK_MAX_DIGITS,
        read=nusasms_checks.parse_phone_check_callback,
    ),
}


def number_check_providers() -> list[tuple[ProviderSpec, NumberCheck]]:
    """Providers whose adapters declare ``number_check``, with their rules, in registry order."""
    return [
        (spec, NUMBER_CHECKS[spec.name])
        for spec in REGISTRY.values()
        if spec.capabilities.number_check and spec.name in NUMBER_CHECKS
    ]


def read_results(provider: str, body: Any) -> list[PhoneCheckResult]:
    """The results one provider's callback carries (empty when none can be read)."""
    check = NUMBER_CHECKS.get(provider)
    return check.read(body) if check is not None else []


def _validator(provider: str) -> Callable[[Any], object]:
    def validate(body: Any) -> object:
        results = read_results(provider, body)
        if not results:
            raise InvalidCallback(
                "no phone number with a WhatsApp answer in the body"  # i18n: not shown
            )
        return results

    return validate


def callback_validators() -> dict[tuple[str, str], Callable[[Any], object]]:
    """``(provider, kind)`` → a check that a callback carries at least one answered number."""
    return {(name, KIND): _validator(name) for name in NUMBER_CHECKS}
