"""Loading the encoder ensemble a command asked for, with a warning per missing member."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cloak.models.base import AutoEncoder


def load_encoders(
    names: Sequence[str], args: argparse.Namespace, device: str = "cpu"
) -> list[AutoEncoder]:
    """Load the ensemble; warn about missing members on stderr, fail only when none is present.

    Args:
        names: Registry names of the encoders.
        args: The command's arguments (``models_dir``, ``offline``).
        device: Where to put the encoders.
    """
    from cloak.models import load_ensemble

    encoders, missing = load_ensemble(
        names, models_dir=args.models_dir, offline=True if args.offline else None, device=device
    )
    for name, reason in missing.items():
        print(f"warning: encoder {name} not used: {reason}", file=sys.stderr)
    return encoders
