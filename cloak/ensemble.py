"""Loading the encoder ensemble a command asked for, with a warning per missing member."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cloak.models.base import AutoEncoder


def load_encoders(
    names: Sequence[str], args: argparse.Namespace, device: str = "cpu"
) -> list[AutoEncoder]:
    """Load the ensemble; note missing members in one line, fail only when none is present.

    A missing encoder is not an error while another one works: one line names what is used and
    what is not (with how to fetch it); the folders searched and each reason appear only with
    ``--verbose``.

    Args:
        names: Registry names of the encoders.
        args: The command's arguments (``models_dir``, ``offline``, optional ``verbose``).
        device: Where to put the encoders.
    """
    from cloak.models import load_ensemble

    encoders, missing = load_ensemble(
        names, models_dir=args.models_dir, offline=True if args.offline else None, device=device
    )
    if missing:
        used = ", ".join(e.name for e in encoders)
        absent = ", ".join(missing)
        verbose = getattr(args, "verbose", False)
        hint = "" if verbose else "; -v for details"
        print(
            f"note: using {used}; not installed: {absent} "
            f"(cloak models download {' '.join(missing)}{hint})",
            file=sys.stderr,
        )
        if verbose:
            for name, reason in missing.items():
                print(f"  {name}: {reason}", file=sys.stderr)
    return encoders
