"""SIGINT and SIGTERM stop a sweep the same way: Tune saves its state, the MLflow runs close as interrupted, and the
command exits with :data:`INTERRUPTED_EXIT`, which tells a batch script to requeue it with ``--resume``.

Ctrl-C sends SIGINT; Slurm (``scancel``, a time limit, pre-emption) and Kubernetes (a pod evicted or deleted) send
SIGTERM. Tune handles only SIGINT (and SIGUSR1) itself, and its handler does not let the caller know it fired, so a
sweep could not tell an interrupted ending from a finished one (Tune marks the cut-off trials TERMINATED on its way
out). Here one handler takes both signals, records which came, and asks Tune for its graceful stop through SIGUSR1.

Slurm (``scancel``, a time limit) signals every process of the job, Ray's own included: with the local Ray's GCS
gone, Tune saves its state at once but then waits in its clean-up for a GCS that never answers, until Ray ends the
process after 60 s with status 1 (past Slurm's grace period, runs left RUNNING, no requeue). So once Tune has saved
its state after a signal, a watchdog gives the fit :data:`STUCK_AFTER_S` more to return; if it has not, the watchdog
closes the runs as interrupted itself and ends the process with :data:`INTERRUPTED_EXIT`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Self

# os.EX_TEMPFAIL: "try again later". A sweep that exits with it was stopped by a signal and continues with --resume.
INTERRUPTED_EXIT = 75
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STUCK_AFTER_S = 5.0  # how long the fit may take to return once Tune has saved its state after a signal
SAVE_LIMIT_S = 20.0  # how long Tune may take to save it; a stuck fit then ends anyway, within Slurm's 30 s


class StopSignals:
    """Within ``with StopSignals() as stop:``, SIGINT and SIGTERM set ``stop.received`` (the signal's name); within
    ``with stop.graceful(): tuner.fit()`` they stop the fit gracefully, elsewhere (or at a second signal) they raise
    KeyboardInterrupt."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._fitting = False
        self._previous: dict[int, object] = {}
        self._tune_sigint_setting: str | None = None
        self._on_stuck: tuple[Callable[[float], bool], Callable[[], None]] = (lambda since: True, lambda: None)

    def __enter__(self) -> Self:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set handlers: a sweep run from another thread keeps the defaults
        # Tune's own SIGINT handler would take Ctrl-C from this one during a fit; it keeps SIGUSR1, used below.
        self._tune_sigint_setting = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        for number in (*STOP_SIGNALS, signal.SIGUSR1):
            self._previous[number] = signal.getsignal(number)
        for number in STOP_SIGNALS:
            signal.signal(number, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        if self._tune_sigint_setting is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self._tune_sigint_setting

    @contextmanager
    def graceful(self, saved_since: Callable[[float], bool] = lambda since: True,
                 close: Callable[[], None] = lambda: None) -> Iterator[None]:
        """Around ``Tuner.fit``: a signal lets Tune save its state and return instead of raising. Should the fit not
        return :data:`STUCK_AFTER_S` after ``saved_since(t)`` says Tune saved its state at or after the signal's
        time ``t`` (or :data:`SAVE_LIMIT_S` after the signal), ``close()`` ends the runs and the process exits
        with :data:`INTERRUPTED_EXIT` (see the module docstring)."""
        self._fitting = True
        self._on_stuck = (saved_since, close)
        try:
            yield
        finally:
            self._fitting = False

    def _watch(self, signalled: float) -> None:
        """The watchdog thread started by the first signal during a fit."""
        saved_since, close = self._on_stuck
        saved_at = None
        while self._fitting:
            now = time.monotonic()
            if saved_at is None and (saved_since(time.time() - (now - signalled)) or now - signalled > SAVE_LIMIT_S):
                saved_at = now
            if saved_at is not None and now - saved_at > STUCK_AFTER_S:
                print(f"Tune saved its state but did not return within {STUCK_AFTER_S:g} s (Ray's processes got the "
                      "signal too): closing the runs here", file=sys.stderr, flush=True)
                close()
                sys.stdout.flush()
                os._exit(INTERRUPTED_EXIT)  # the main thread is blocked in Ray's C++ and cannot be unwound
            time.sleep(0.2)

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is not None:
            raise KeyboardInterrupt  # asked twice: stop now, without waiting for Tune
        self.received = signal.Signals(number).name
        # Tune installs its SIGUSR1 handler once the fit has started.
        tune_stops = self._fitting and signal.getsignal(signal.SIGUSR1) is not self._previous[signal.SIGUSR1]
        print(f"\n{self.received} received: stopping the sweep; running trials keep their last checkpoint "
              "(send it again to stop at once)", file=sys.stderr, flush=True)
        if not tune_stops:
            raise KeyboardInterrupt  # no fit running yet (or any more): nothing for Tune to save
        threading.Thread(target=self._watch, args=(time.monotonic(),), name="stuck-fit-watchdog", daemon=True).start()
        os.kill(os.getpid(), signal.SIGUSR1)  # Tune's graceful stop: it saves the experiment state and returns
