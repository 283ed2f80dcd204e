"""Cloak's desktop app: a queue of photos, settings, a protect worker and a compare view.

State lives in :mod:`cloak.gui.state` (QObjects with ``*_changed`` signals), long work in
:mod:`cloak.gui.worker` (never on the UI thread), and the ``*_view`` / ``*_panel`` modules only
lay out and style.
"""
