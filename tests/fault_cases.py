"""Moved to :mod:`support.fault_cases`; this name stays only for tests/test_faults_gui.py.

(That file belongs to the app's tests; switching its import to ``support.fault_cases`` lets
this shim go.)
"""

from support.fault_cases import leftovers, sha256, smooth_rgb

__all__ = ["leftovers", "sha256", "smooth_rgb"]
