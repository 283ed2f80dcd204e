"""Fuzz ``load_photo`` with damaged copies of small images for a number of minutes.

Usage: python benchmarks/fuzz_loader.py MINUTES [--seed N]

Prints how many files were tried, how many loaded, how many raised PhotoError and how many
raised anything else (expected: 0). Failing inputs are kept in a folder it prints.
Exits 1 when any other exception was seen.
"""

from __future__ import annotations

import argparse
import collections
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from support.photo_factory import mutate, seed_images  # noqa: E402

from cloak.errors import PhotoError  # noqa: E402
from cloak.photo_io import load_photo  # noqa: E402

FUZZ_MAX_PIXELS = 4_000_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("minutes", type=float, help="how long to fuzz")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)

    seeds = seed_images()
    names = sorted(seeds)
    rng = random.Random(args.seed)
    counts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    crashes = Path(tempfile.mkdtemp(prefix="cloak-fuzz-crashes-"))
    deadline = time.monotonic() + args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        while time.monotonic() < deadline:
            name = rng.choice(names)
            data = mutate(seeds[name], rng)
            path = Path(tmp) / name
            path.write_bytes(data)
            counts["tries"] += 1
            try:
                load_photo(path, max_pixels=FUZZ_MAX_PIXELS)
                counts["loaded"] += 1
            except PhotoError as exc:
                counts["PhotoError"] += 1
                reasons[exc.reason.split(";")[0].split(" (")[0]] += 1
            except Exception:  # noqa: BLE001 - exactly what we are hunting
                counts["other exceptions"] += 1
                kept = crashes / f"{counts['tries']:08d}-{name}"
                kept.write_bytes(data)
                print(f"OTHER EXCEPTION on {kept}:\n{traceback.format_exc()}", file=sys.stderr)
    print(f"fuzzed load_photo for {args.minutes:g} min (seed {args.seed})")
    for key in ("tries", "loaded", "PhotoError", "other exceptions"):
        print(f"  {key:17} {counts[key]}")
    print("  PhotoError reasons:")
    for reason, n in reasons.most_common(8):
        print(f"    {n:7}  {reason}")
    if counts["other exceptions"]:
        print(f"  failing inputs kept in {crashes}")
        return 1
    shutil.rmtree(crashes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
