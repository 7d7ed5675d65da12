"""Large sends (more than ``CONFIRM_ABOVE`` recipients): Stop, Retry failed, resume at start.

The send itself is :meth:`bot.services.sending.Sender.send`, which stores every row before
anything goes out and marks each chunk handed over before its provider call
(:mod:`storage.large_sends`). Here are the use-cases around it:

- **Stop** (the card's button): the send's author or an admin; what was not handed to the
  provider is never sent, what was goes on and is tracked as usual. A second press changes
  nothing and says so.
- **Retry failed** (the card's button once the send ended): a new send, through the normal
  send path, to the recipients that certainly failed (``failed``; never ``unknown`` ones,
  which the provider may have, nor the ones a Stop kept back). Its origin names the send it
  retries, so a second press finds the first retry instead of sending again.
- **Resume**: at start, every large send still ``sending`` goes on with its rows never handed
  over, in a background task of this process; a stop cuts those tasks off like any send.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from bot.services.errors import BadInput
from bot.services.sending import Sender, SendOutcome, SendRequest, resumed_request
from i18n import _
from providers.base import DeliveryState
from storage.large_sends import Stopped
from storage.models import Batch, Message, Progress
from storage.repo import Repository

log = logging.getLogger(__name__)

RETRY_ORIGIN = "retry:{batch_id}"


@dataclass(frozen=True, slots=True)
class StopOutcome:
    """A Stop press: what it kept back (None: the send was not running any more)."""

    stopped: Stopped | None
    progress: str | None


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """A Retry failed press: the send to make (``count`` recipients), or the earlier retry."""

    request: SendRequest | None
    earlier: Batch | None
    count: int


class LargeSends:
    """Stop, Retry failed and resume of large sends."""

    def __init__(self, repo: Repository, sender: Sender) -> None:
        self._repo = repo
        self._sender = sender
        self._resumed: set[asyncio.Task[None]] = set()

    async def batch(self, chat_id: int, batch_id: int) -> Batch:
        """The chat's send ``batch_id``, or ``BadInput``."""
        batch = await self._repo.messages.batch(batch_id)
        if batch is None or batch.chat_id != chat_id:
            raise BadInput(_("Send {id} does not belong to this chat.").format(id=batch_id))
        return batch

    async def stop(self, chat_id: int, batch_id: int, *, actor: int, by: str) -> StopOutcome:
        """Stop a running large send: nothing not yet handed to the provider goes out."""
        detail = _("not sent: the send was stopped by {name}").format(name=by)
        stopped = await self._repo.large_sends.stop(
            chat_id, batch_id, actor=actor, by=by, detail=detail
        )
        if stopped is None:
            batch = await self.batch(chat_id, batch_id)
            return StopOutcome(None, batch.progress)
        log.info("send %s stopped: %d recipients kept back", batch_id, stopped.not_sent)
        return StopOutcome(stopped, Progress.STOPPED.value)

    async def retry_plan(
        self, chat_id: int, batch_id: int, *, actor_id: int, actor_name: str
    ) -> RetryPlan:
        """The new send to the recipients of a finished send that certainly failed.

        Its origin names the send it retries, so a second retry finds the first
        (``RetryPlan.earlier``) and :meth:`bot.services.sending.Sender.send` never sends twice.

        Raises:
            BadInput: while the send runs, when nothing failed, or when it carried a file.

        """
        batch = await self.batch(chat_id, batch_id)
        origin = RETRY_ORIGIN.format(batch_id=batch_id)
        earlier = await self._repo.messages.batch_for_origin(origin)
        if earlier is not None:
            return RetryPlan(None, earlier, 0)
        if batch.progress == Progress.SENDING.value:
            raise BadInput(
                _("Send {id} is still running; retry once it has ended.").format(id=batch_id)
            )
        failed = await self._repo.large_sends.failed(batch_id)
        if not failed:
            raise BadInput(
                _("No recipient of send {id} certainly failed: nothing to retry.").format(
                    id=batch_id
                )
            )
        if any(m.media_name for m in failed):
            raise BadInput(_("Files are not kept: reply to the file with /send to send it again."))
        texts = [m.text for m in failed]
        personal = any(t != batch.text for t in texts)
        request = replace(
            resumed_request(batch),
            actor_id=actor_id,
            actor_name=actor_name,
            recipients=[m.recipient for m in failed],
            texts=texts if personal else None,
            origin=origin,
            card_note=_("🔁 Retry of the {count:,} failed recipients of send {id}.").format(
                count=len(failed), id=batch_id
            ),
        )
        return RetryPlan(request, None, len(failed))

    async def retry(self, plan: RetryPlan) -> SendOutcome:
        """Run a retry planned by :meth:`retry_plan` (the normal send path)."""
        assert plan.request is not None
        return await self._sender.send(plan.request)

    def resume_all(
        self, batches: Sequence[Batch], on_sent: Callable[[list[Message]], None]
    ) -> int:
        """Go on with these cut-off sends in background tasks; ``on_sent`` tracks their rows.

        A send this process already goes on with is not started twice. Returns how many started.
        """
        going = {task.get_name() for task in self._resumed}
        started = 0
        for batch in batches:
            name = f"resume-{batch.id}"
            if name in going:
                continue
            task = asyncio.create_task(self._resume(batch, on_sent), name=name)
            self._resumed.add(task)
            task.add_done_callback(self._resumed.discard)
            started += 1
        return started

    async def stop_resumed(self, grace: float) -> int:
        """At a stop: give resumed sends ``grace`` seconds, then cut them off; how many.

        A send cut off keeps its rows not handed over queued: the next start goes on.
        """
        tasks = list(self._resumed)
        if not tasks:
            return 0
        _done, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return len(late)

    async def _resume(self, batch: Batch, on_sent: Callable[[list[Message]], None]) -> None:
        try:
            sent = await self._sender.resume(batch)
        except asyncio.CancelledError:
            raise
        except Exception:  # logged; the rows left stay queued for the next start
            log.exception("could not go on with send %s", batch.id)
            return
        on_sent([m for m in sent if m.state != DeliveryState.QUEUED.value])
