"""What a done photo shows after its pictures: the heatmap, the AI view and the scores.

:class:`Analysis` measures them off the UI thread for the photo the person looks at, one photo
at a time, and hands each record to the compare view as it arrives; a record for any other
photo is dropped by the view, so a late result never lands on the wrong photo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from superqt.utils import GeneratorWorker

from cloak.device import use_bf16
from cloak.encoding import encoder_device
from cloak.gui.compare_view import CompareView
from cloak.gui.state import QueueModel
from cloak.gui.worker import AiView, Pictures, analyse_task, make_worker

QUEUED = Qt.ConnectionType.QueuedConnection
"""Worker signals always reach the controller on the UI thread."""
KEEP_PICTURES = 3
"""Display pictures are kept in memory for this many recently shown photos."""


class Analysis(QObject):
    """Measures the AI view and scores of one photo at a time, on request.

    Args:
        queue: The queue whose items get the measured pictures and AI view.
        compare: The view that shows them.
        busy: Whether a protect run is going on (measuring waits for its end).
        encoders: The loaded encoders (None before the first run loaded them).

    Signals:
        ai_ready: ``(uid, reposts)``: an item's AI view and scores arrived.
        analysis_ready: ``row``: a row's AI view and scores arrived (and again with re-posts).
    """

    ai_ready = Signal(int, bool)
    analysis_ready = Signal(int)

    def __init__(
        self,
        queue: QueueModel,
        compare: CompareView,
        busy: Callable[[], bool],
        encoders: Callable[[], list[Any] | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.queue = queue
        self.compare = compare
        self._busy = busy
        self._encoders = encoders
        self.worker: GeneratorWorker | None = None
        self.attacker_long_side: int | None = None  # None: cloak.metrics.ATTACKER_LONG_SIDE
        self._analysing: int | None = None
        self._reposts_after: int | None = None
        self._recent: list[int] = []
        # The original's encodings of the last photo measured (see analyse_task's cache): a
        # redo with another preset measures only the new protected copy.
        self._cache_of: tuple[str, float] | None = None
        self._cache: dict[Any, Any] = {}

    def request_reposts(self, uid: int) -> GeneratorWorker | None:
        """Measure the platform re-post scenarios of item ``uid`` (on the person's request)."""
        row = self.queue.row_of(uid)
        if row < 0 or self.queue.item(row).ai is None:
            return None
        return self.request(row, reposts=True)

    def request(self, row: int, reposts: bool = False) -> GeneratorWorker | None:
        """Fill in what ``row`` lacks (pictures, AI view, scores) in a worker, cheapest first;
        ``reposts`` adds the platform re-post scenarios."""
        item = self.queue.item(row)
        loaded = self._encoders()
        if item.dest is None or not item.dest.is_file() or loaded is None:
            return None
        if self._busy():
            # Measured when the run ends: alongside a protection it would slow it down and add
            # its full-size pictures to the protection's in memory (the peak of a session).
            self.compare.ai_waits = True
            self.compare.set_ai(item.uid, item.ai)
            return None
        self.compare.ai_waits = False
        a = self.worker
        if a is not None:
            if self._analysing == item.uid:
                if reposts:
                    self._reposts_after = item.uid  # once the AI view of this photo is in
                    self.compare.reposts_pending = True
                    self.compare.set_ai(item.uid, item.ai)
                return a
            a.quit()  # another photo: stop it at its next stage, its records are dropped
        encoders = [e for e in loaded if e.name in item.attacked] or loaded
        try:
            photo = (str(item.source), item.source.stat().st_mtime)
        except OSError:
            photo = None
        if photo is None or photo != self._cache_of:
            self._cache_of, self._cache = photo, {}
        # The app protects with precision "auto": measured the same way, the attack's round
        # trips of the original (kept with the result) stand in for the original's side.
        bf16 = use_bf16(encoder_device(encoders[0]), "auto")
        seeds = item.result.clean if item.result is not None and item.ai is None else []
        w = make_worker(
            analyse_task(
                item.uid,
                item.source,
                item.dest,
                encoders,
                self.attacker_long_side,
                need_pictures=item.pictures is None or item.pictures.heat is None,
                reposts=reposts,
                known=item.ai,
                cache=self._cache,
                bf16=bf16,
                seeds=seeds,
            )
        )
        self.compare.reposts_pending = reposts
        if reposts:
            self.compare.set_ai(item.uid, item.ai)
        w.yielded.connect(self.on_record, QUEUED)
        w.errored.connect(lambda exc, uid=item.uid: self._on_error(uid, exc), QUEUED)
        w.finished.connect(lambda w=w: self._on_finished(w), QUEUED)
        self.worker, self._analysing = w, item.uid
        w.start()
        return w

    @Slot(object)
    def on_record(self, rec: Any) -> None:
        """Take one record of the analysis worker (pictures or AI view) for its photo."""
        row = self.queue.row_of(rec.uid)
        if row < 0:
            return
        if isinstance(rec, Pictures):
            if rec.uid in self._recent:
                self.queue.item(row).pictures = rec
            self.compare.set_pictures(rec.uid, rec)
        elif isinstance(rec, AiView):
            self.queue.item(row).ai = rec
            if rec.reposts:
                self.compare.reposts_pending = False
            self.compare.set_ai(rec.uid, rec)
            self.ai_ready.emit(rec.uid, rec.reposts)
            self.analysis_ready.emit(row)

    def _on_error(self, uid: int, exc: BaseException) -> None:
        if self.compare.current_uid == uid:
            self.compare.scores.show_scores(None, note=f"Could not compare: {exc}")

    def _on_finished(self, w: GeneratorWorker) -> None:
        if self.worker is not w:
            return
        self.worker, self._analysing = None, None
        uid, self._reposts_after = self._reposts_after, None
        if uid is not None and uid == self.compare.current_uid:
            self.request_reposts(uid)
        elif self.compare.reposts_pending:
            self.compare.reposts_pending = False
            cur = self.compare.current_uid
            row = self.queue.row_of(cur) if cur is not None else -1
            if row >= 0:
                self.compare.set_ai(cur, self.queue.item(row).ai)

    def keep_pictures(self, row: int) -> None:
        """Keep display pictures for the few photos seen last; the others are read again from
        disk when selected (full-size pictures of every photo would grow without bound)."""
        uid = self.queue.item(row).uid
        self._recent = [u for u in self._recent if u != uid][-(KEEP_PICTURES - 1) :] + [uid]
        for it in self.queue.items:
            if it.uid in self._recent:
                continue
            it.pictures = None
            # The attack's round trips (3 MB per encoder) likewise; without them the photo's
            # measurement encodes the original again.
            if it.result is not None:
                it.result.clean = []

    def quit(self) -> None:
        """Stop the running measurement at its next stage."""
        if self.worker is not None:
            self.worker.quit()
