"""Explaining several images at once so that building one image's masked batch overlaps the model.

The Partition explainer alternates between its own work (the Owen recursion and the masked images of the
next batch) and the model. One image's next batch depends on the model's answer for its last one, so
within an image the two cannot overlap; across images they can. :func:`run_in_lanes` runs the images'
work in worker threads ("lanes") and relays every model call to the calling thread, which does nothing
but run the model. The model therefore always runs on the caller's thread (so thread-local settings
such as ``torch.no_grad()`` or a TensorFlow device scope apply, and a model that is not thread-safe is
never run twice at once), one call at a time, while the other lane builds its next batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

Result = TypeVar("Result")
Answer = TypeVar("Answer")
#: The model as ``work`` calls it: ``call(*args)`` returns ``model(*args)``.
Call = Callable[..., Answer]

_POLL_SECONDS = 0.05  # how often a waiting lane checks whether the run was abandoned


class _Abandoned(Exception):
    """Raised in a lane whose run stopped (the model or another lane failed, or the caller left)."""


class _Reply(Generic[Answer]):
    """The answer to one relayed model call, handed from the calling thread to a lane."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._value: list[Answer] = []  # the answer, once given
        self._error: BaseException | None = None

    def answer(self, value: Answer) -> None:
        self._value.append(value)
        self._done.set()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._done.set()

    def wait(self, abandoned: threading.Event) -> Answer:
        while not self._done.wait(_POLL_SECONDS):
            if abandoned.is_set():  # the caller stopped reading its inbox
                raise _Abandoned
        if self._error is not None:
            raise _Abandoned from self._error
        return self._value[0]


@dataclass
class _Relayed(Generic[Answer]):
    """A lane's model call, for the calling thread to run."""

    args: tuple[object, ...]
    reply: _Reply[Answer]


@dataclass
class _Done(Generic[Result]):
    """A lane finished item ``item``."""

    item: int
    result: Result


@dataclass
class _Failed:
    """A lane's work raised ``error``."""

    error: BaseException


def run_in_lanes(
    work: Callable[[int, int, Call[Answer]], Result], count: int, model: Call[Answer], lanes: int = 2
) -> Iterator[tuple[int, Result]]:
    """Yield ``(i, work(i, lane, call))`` for ``i`` in ``range(count)`` as each finishes.

    ``work`` runs in ``lanes`` worker threads, each taking the next item not yet taken when it is done
    with one; ``lane`` says which thread runs it, so per-lane state such as a buffer is never shared.
    Each ``call(*args)`` that ``work`` makes returns ``model(*args)``, run on the thread iterating this
    generator. With one lane or one item everything runs on the calling thread, in order. An error in
    ``model`` or in ``work`` is raised here, after the lanes have stopped; closing the generator (or
    dropping it) stops them too.
    """
    if lanes <= 1 or count <= 1:
        for i in range(count):
            yield i, work(i, 0, model)
        return

    inbox: queue.SimpleQueue[_Relayed[Answer] | _Done[Result] | _Failed] = queue.SimpleQueue()
    abandoned = threading.Event()
    untaken = iter(range(count))
    taking = threading.Lock()

    def call(*args: object) -> Answer:
        if abandoned.is_set():
            raise _Abandoned
        reply: _Reply[Answer] = _Reply()
        inbox.put(_Relayed(args, reply))
        return reply.wait(abandoned)

    def lane(index: int) -> None:
        try:
            while not abandoned.is_set():
                with taking:
                    i = next(untaken, None)
                if i is None:
                    return
                inbox.put(_Done(i, work(i, index, call)))
        except _Abandoned:
            pass
        except BaseException as error:  # handed to the caller, who raises it
            inbox.put(_Failed(error))

    threads: list[threading.Thread] = []
    try:
        for index in range(min(lanes, count)):
            threads.append(
                threading.Thread(target=lane, args=(index,), name=f"deepshap-lane-{index}", daemon=True)
            )
            threads[-1].start()
        finished = 0
        while finished < count:
            message = inbox.get()
            if isinstance(message, _Relayed):
                try:
                    value = model(*message.args)
                except BaseException as error:
                    message.reply.fail(error)
                    raise
                message.reply.answer(value)
            elif isinstance(message, _Failed):
                raise message.error
            else:
                finished += 1
                yield message.item, message.result
    finally:
        abandoned.set()
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join()
