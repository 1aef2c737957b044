"""SQLite WAL checkpoints on a thread of their own, so that no COMMIT waits for one.

In WAL mode a COMMIT appends to the ``-wal`` file; a checkpoint copies those pages back into the
database file and syncs it. By default the connection that commits past a threshold runs the
checkpoint inside that COMMIT: with ``wal_autocheckpoint=10000`` that was ~40 MB written and synced
while every request waited for the only connection, every few seconds under ingest load (the p99
latency at half of the maximum ingest rate went from 8.6 ms without checkpoints to 24–40 ms with
them). Here a second connection of our own runs ``PRAGMA wal_checkpoint(PASSIVE)`` every
``interval`` seconds: SQLite runs a passive checkpoint alongside readers and the writer (it takes
only the checkpoint lock, copies the frames no reader still needs and never waits), and the thread
releases the GIL while SQLite works.

A passive checkpoint alone does not keep the WAL small under steady writes: SQLite starts the log over
only when a write transaction begins while *every* frame has been copied back, and a passive checkpoint
(~10 ms) never catches up with a writer that commits every millisecond. The log then grew to the
committing connection's ``wal_autocheckpoint`` (~400 MiB), and that COMMIT ran the checkpoint itself,
syncing the database file with everything this thread had copied unsynced: a 50 ms stall every few
seconds under ingest load (30 ms every half second with a smaller limit). A RESTART checkpoint from this
thread would take the write lock, and the event loop would wait for it in SQLite's busy handler.

So once the log holds ``restart_frames`` frames, this thread syncs the database file after its pass
(holding no lock) and asks the committing connection to catch up: after its next COMMIT that wrote, on the
commit thread (``sqlite_driver.Connection.after_commit``, so the event loop never waits for it), that
connection runs a passive checkpoint of its own. It copies only the frames written since this thread's
pass and syncs almost nothing, and as no write can come in between, the connection's next write
transaction starts the log over. The committing connection's ``journal_size_limit`` (``core.db``) then
truncates a log that had grown large.

The committing connection keeps a far larger ``wal_autocheckpoint`` (see ``core.db``) as a safety net,
should this thread fall behind or stop.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

log = logging.getLogger(__name__)


class Checkpointer:
    """Runs a passive WAL checkpoint of one database file every ``interval`` seconds until stopped."""

    def __init__(self, path: str, *, interval: float = 0.5, restart_frames: int = 4096) -> None:
        self.path = path
        self.interval = interval
        self.restart_frames = restart_frames
        self.checkpoints = 0  # checkpoints that copied frames
        self.catch_ups = 0  # catch-ups that left nothing to copy (the next write starts the log over)
        self._catch_up_due = False
        self._database_fd: int | None = None
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
        """One passive checkpoint with ``connection``; if the log has grown long, the committing connection is
        asked to catch up (:meth:`catch_up`)."""
        busy, logged, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied > 0:
            self.checkpoints += 1
        log.debug("wal checkpoint: busy=%s, %s frames in the log, %s copied", busy, logged, copied)
        if busy or logged < self.restart_frames or copied <= 0:
            return
        # A passive checkpoint that could not copy every frame leaves the pages it wrote unsynced: sync them
        # here, holding no lock, so that the catch-up (which syncs the file) has next to nothing to flush.
        if self._database_fd is not None:
            os.fsync(self._database_fd)
        self._catch_up_due = True

    def catch_up(self, connection: sqlite3.Connection) -> None:
        """Run by the committing connection right after a COMMIT that wrote, on the commit thread: when asked
        to, a passive checkpoint of the few frames written since this thread's last pass, so that the
        connection's next write starts the log over. Never raises: the COMMIT has succeeded."""
        if not self._catch_up_due:
            return
        try:
            busy, logged, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("WAL catch-up checkpoint failed: %s", exc)
            return
        if not busy and logged == copied:  # busy: this thread's own checkpoint was running; the next COMMIT tries
            self._catch_up_due = False
            self.catch_ups += 1

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            self._database_fd = os.open(self.path, os.O_RDONLY)
        except (sqlite3.Error, OSError) as exc:
            log.warning("no background WAL checkpoints for this database: %s", exc)
            if connection is not None:
                connection.close()
            return
        try:
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(connection)
                except (sqlite3.Error, OSError) as exc:  # the file went away, a disk error: the next round tries again
                    log.warning("background WAL checkpoint failed: %s", exc)
        finally:
            connection.close()
            if self._database_fd is not None:
                os.close(self._database_fd)
                self._database_fd = None
