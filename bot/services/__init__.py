"""Use-cases of chatops-bridge. Nothing here imports telegram: handlers call these.

:class:`Services` wires the use-cases to one repository, one cipher and one provider
environment; it is built in ``post_init`` and closed in ``post_shutdown``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.services.accounts import Accounts
from bot.services.address_book import AddressBooks
from bot.services.addressing import Addressing
from bot.services.approvals import Approvals
from bot.services.chats import Chats
from bot.services.checks import PhoneChecks
from bot.services.dialogues import Dialogues
from bot.services.gate import SendGate
from bot.services.inline import InlineSearch
from bot.services.large_sends import LargeSends
from bot.services.links import ConnectLinks
from bot.services.lists import RecipientLists
from bot.services.multicasts import Multicasts
from bot.services.reports import Reports
from bot.services.scheduling import Schedules
from bot.services.senders import Senders
from bot.services.sending import Sender
from bot.services.status import StatusReader
from bot.services.stoplist import Stoplists
from bot.services.templates import Templates
from i18n import ENGLISH
from providers.registry import ProviderEnvironment
from storage.approvals import ApprovalStore
from storage.confirmations import Confirmations
from storage.crypto import CredentialCipher
from storage.lists import ListStore
from storage.lookup import MessageLookup
from storage.phone_checks import PhoneCheckStore
from storage.repo import Repository
from storage.schedules import ScheduleRepository
from storage.templates import TemplateStore

if TYPE_CHECKING:
    from bot.tracking.events import CardEvents


@dataclass(slots=True)
class Services:
    """Every use-case, sharing one repository and one HTTP client."""

    repo: Repository
    accounts: Accounts
    chats: Chats
    sender: Sender
    status: StatusReader
    schedules: Schedules
    checks: PhoneChecks
    links: ConnectLinks
    senders: Senders
    address_books: AddressBooks
    multicasts: Multicasts
    lists: RecipientLists
    templates: Templates
    addressing: Addressing
    gate: SendGate
    inline: InlineSearch
    large_sends: LargeSends
    stoplists: Stoplists
    reports: Reports
    dialogues: Dialogues
    approvals: Approvals
    # Set once the delivery tracker runs; post_card tells it about every new card.
    card_events: CardEvents | None = None

    @classmethod
    def build(
        cls,
        repo: Repository,
        cipher: CredentialCipher,
        env: ProviderEnvironment,
        *,
        send_concurrency: int,
        first_poll: float,
        status_callback: Callable[[str], str | None] = lambda provider: None,
        large_above: int | None = None,
        confirm_above: int = 50,
        default_language: str = ENGLISH,
        approval_expiry: timedelta = timedelta(hours=24),
    ) -> Services:
        """Wire the use-cases together.

        ``status_callback`` gives a provider's status callback URL (None outside webhook mode);
        ``default_language`` is the language of chats that chose none; a send to more than
        ``confirm_above`` recipients waits for a Send press, and one to more
        than ``large_above`` is a large send (progress card, Stop); both are ``CONFIRM_ABOVE``.
        An operator's send held for approval expires after ``approval_expiry``.
        """
        accounts = Accounts(repo, cipher, env)
        sender = Sender(
            repo,
            accounts,
            concurrency=send_concurrency,
            first_poll=first_poll,
            status_callback=status_callback,
            large_above=large_above,
        )
        confirmations = Confirmations(repo.db)
        lists = RecipientLists(ListStore(repo.db), confirmations, repo)
        templates = Templates(TemplateStore(repo.db), repo)
        status = StatusReader(repo, accounts)
        schedules = Schedules(
            ScheduleRepository(repo.db, repo.messages.outbox), repo, accounts, sender
        )
        # One clock for schedules, quiet hours and approvals: a test that moves one moves all.
        approvals = Approvals(
            ApprovalStore(repo.db), repo, expiry=approval_expiry, clock=lambda: schedules.clock()
        )
        gate = SendGate(
            confirmations,
            repo,
            accounts,
            schedules,
            approvals,
            confirm_above=confirm_above,
            clock=lambda: schedules.clock(),
        )
        return cls(
            repo=repo,
            accounts=accounts,
            chats=Chats(repo, default_language=default_language),
            sender=sender,
            status=status,
            schedules=schedules,
            checks=PhoneChecks(PhoneCheckStore(repo.db), accounts, repo),
            links=ConnectLinks(repo),
            senders=Senders(accounts),
            address_books=AddressBooks(repo, accounts),
            multicasts=Multicasts(accounts, sender, confirmations, repo.messages, approvals),
            lists=lists,
            templates=templates,
            addressing=Addressing(lists, templates),
            gate=gate,
            inline=InlineSearch(MessageLookup(repo.db), status),
            large_sends=LargeSends(repo, sender),
            stoplists=Stoplists(repo),
            reports=Reports(repo),
            dialogues=Dialogues(repo, cipher),
            approvals=approvals,
        )
