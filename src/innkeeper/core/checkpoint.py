"""SQLite WAL checkpoints on a thread of their own, so that no COMMIT waits for one.

In WAL mode a COMMIT appends to the ``-wal`` file; a checkpoint copies those pages back into the
database file and syncs it. By default the connection that commits past a threshold runs the
checkpoint inside that COMMIT: with ``wal_autocheckpoint=10000`` that was ~40 MB written and synced
while every request waited for the only connection, every few seconds under ingest load (the p99
latency at half of the maximum ingest rate went from 8.6 ms without checkpoints to 24–40 ms with
them). Here a second connection of our own runs ``PRAGMA wal_checkpoint(PASSIVE)`` every
``interval`` seconds: SQLite runs a passive checkpoint alongside readers and the writer (it takes
only the checkpoint lock, copies the frames no reader still needs and never waits), and the thread
releases the GIL while SQLite works. Once a checkpoint has caught up, the next write starts the WAL
over, so its size stays bounded by what is written between two checkpoints.

The committing connection keeps a far larger ``wal_autocheckpoint`` (see ``core.db``) as a safety net,
should this thread fall behind or stop.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)


class Checkpointer:
    """Runs a passive WAL checkpoint of one database file every ``interval`` seconds until stopped."""

    def __init__(self, path: str, *, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # checkpoints that copied frames
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"sqlite-checkpoint {path}", daemon=True)

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the checkpoint in progress, if any (safe to call more than once)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        """One passive checkpoint with ``connection``."""
        busy, logged, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied > 0:
            self.checkpoints += 1
        log.debug("wal checkpoint: busy=%s, %s frames in the log, %s copied", busy, logged, copied)

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as exc:
            log.warning("no background WAL checkpoints for this database: %s", exc)
            return
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(connection)
                except sqlite3.Error as exc:  # the file went away, a disk error: the next round tries again
                    log.warning("background WAL checkpoint failed: %s", exc)
        finally:
            connection.close()
