"""The ``cloak`` command line: protect, check, models (and evaluate)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cloak import __version__
from cloak.config import PRESETS, ProtectConfig, TransformConfig, preset
from cloak.device import (
    LOW_MEMORY_AUTO_BELOW,
    LOW_MEMORY_ENV,
    add_low_memory_option,
    choose_low_memory,
    configure_process,
    restart_with_huge_pages,
)
from cloak.ensemble import load_encoders
from cloak.errors import CloakError
from cloak.formats import OUTPUT_CHOICES

log = logging.getLogger("cloak")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="folder with encoder weights (default: $CLOAK_MODELS_DIR, then the user cache)",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="never download weights (also when HF_HUB_OFFLINE=1)",
    )
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda or mps")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per core)")
    add_low_memory_option(p)


def _size_list(text: str) -> list[int]:
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give sizes in pixels, e.g. 512,768,1024"
        ) from None
    if not sizes or any(not 32 <= v <= 4096 for v in sizes):
        raise argparse.ArgumentTypeError(f"{text!r}: each size must lie in 32..4096 pixels")
    return sizes


def _encoder_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("name at least one encoder, e.g. --encoders taef2")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloak",
        description="Protect photos against AI undress and editing tools.",
    )
    parser.add_argument("--version", action="version", version=f"cloak {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("protect", help="protect photos or folders of photos")
    p.add_argument("paths", nargs="+", type=Path, help="photos and/or folders")
    p.add_argument("-o", "--output", type=Path, default=None, help="output folder")
    p.add_argument("--preset", default="standard", choices=sorted(PRESETS), help="strength")
    p.add_argument("--encoders", type=_encoder_list, default=None, help="e.g. taef2,vaelight")
    p.add_argument("-r", "--recursive", action="store_true", help="descend into sub-folders")
    p.add_argument("--format", choices=sorted(OUTPUT_CHOICES), default=None, help="output format")
    p.add_argument("--quality", type=int, default=None, help="JPEG/WebP quality (default 95)")
    p.add_argument("--overwrite", action="store_true", help="replace existing protected files")
    p.add_argument("--strip-metadata", action="store_true", help="remove all EXIF")
    p.add_argument("--keep-gps", action="store_true", help="keep GPS location (removed by default)")
    p.add_argument("--eps", type=float, default=None, help="budget in 1/255 units, e.g. 8")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps")
    p.add_argument("--work-size", type=int, default=None, help="attack resolution (long side)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--no-eot", action="store_true", help="do not simulate re-encoding")
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default=None,
        help="auto: bf16 where the CPU/GPU has fast bf16, else fp32 (default auto)",
    )
    p.add_argument("--max-pixels", type=int, default=None, help="refuse larger photos")
    p.add_argument(
        "--check",
        action="store_true",
        help="measure each photo as it is saved (AI view size 1024 px, posted as is) and add its "
        "damage and verdict to the summary; reuses the attack's round trip of the original, so "
        "it costs a fraction of what a separate `cloak check` does",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    _add_model_args(p)

    c = sub.add_parser("check", help="measure how well a protected photo is protected")
    c.add_argument("original", type=Path)
    c.add_argument("protected", type=Path)
    c.add_argument("--encoders", type=_encoder_list, default=None, help="default: all present")
    c.add_argument(
        "--sizes",
        type=_size_list,
        default=None,
        help="attacker long sides to simulate, comma-separated (default: 1024, the AI view's; "
        "512,768,1024 covers SD 1.x to SDXL/FLUX)",
    )
    c.add_argument(
        "--reposts",
        action="store_true",
        help="also simulate platform re-posts (1080 px JPEG q80, 720 px q70); about 3x the time",
    )
    c.add_argument(
        "--attacked",
        type=_encoder_list,
        default=None,
        help="encoders the photo was protected against (default: the default set); the others "
        "are reported as held out and do not count in the verdict",
    )
    c.add_argument(
        "--picture", type=Path, default=None, help="comparison PNG (default: <protected>.check.png)"
    )
    c.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto: bf16 where the CPU/GPU has fast bf16 (as protect does; about twice as fast, "
        "damage within ~0.1 dB of fp32), else fp32 (default auto)",
    )
    c.add_argument("--json", action="store_true", help="print the measures as JSON")
    _add_model_args(c)

    m = sub.add_parser("models", help="list, download and verify encoder weights")
    msub = m.add_subparsers(dest="models_command", required=True)
    ml = msub.add_parser("list", help="known encoders and whether their weights are here")
    _add_model_args(ml)
    md = msub.add_parser("download", help="download encoder weights (pinned, checked)")
    md.add_argument("names", nargs="*", help="encoders to download, e.g. taesd taef1")
    md.add_argument("--all", action="store_true", help="the whole default set, in one go")
    _add_model_args(md)
    mv = msub.add_parser("verify", help="check the sha256 of every weight file present")
    _add_model_args(mv)

    e = sub.add_parser("evaluate", help="protect photos with each preset and report the measures")
    e.add_argument("photos", nargs="+", type=Path)
    e.add_argument("-o", "--output", type=Path, required=True, help="report folder")
    e.add_argument("--presets", default=",".join(PRESETS))
    e.add_argument("--encoders", type=_encoder_list, default=None, help="attack ensemble")
    e.add_argument("--holdout", type=_encoder_list, default=None, help="encoders only measured")
    e.add_argument(
        "--baseline-steps",
        type=int,
        default=200,
        help="steps of the PhotoGuard-style reference attack (0 leaves it out)",
    )
    _add_model_args(e)
    return parser


def config_from_args(args: argparse.Namespace) -> ProtectConfig:
    """The job the command line asks for: the preset, then each explicit option."""
    from cloak.photo_io import SaveOptions

    cfg = preset(args.preset)
    changes: dict[str, object] = {"device": args.device}
    if args.encoders:
        changes["encoders"] = args.encoders
    if args.eps is not None:
        changes["eps"] = args.eps / 255.0
    if args.steps is not None:
        changes["steps"] = args.steps
    if args.work_size is not None:
        changes["work_size"] = args.work_size
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.max_pixels is not None:
        changes["max_pixels"] = args.max_pixels
    if args.no_eot:
        changes["transforms"] = TransformConfig(enabled=False)
    if args.precision is not None:
        changes["precision"] = args.precision
    out = cfg.output
    quality = args.quality if args.quality is not None else out.jpeg_quality
    if not 1 <= quality <= 100:
        raise CloakError(f"--quality {quality} must lie in 1..100")
    changes["output"] = SaveOptions(
        format=OUTPUT_CHOICES[args.format] if args.format else None,
        jpeg_quality=quality,
        webp_quality=quality,
        strip_gps=not args.keep_gps,
        strip_metadata=args.strip_metadata,
        overwrite=args.overwrite,
    )
    return cfg.replace(**changes)


def cmd_protect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from cloak.device import choose_device
    from cloak.engine import run_to_end
    from cloak.eta import EtaEstimator, format_duration, pixels_of
    from cloak.jobs import PhotoEvent, plan, run_batch

    config = config_from_args(args)
    jobs, refused = plan(args.paths, args.output, config, args.recursive)
    results = list(refused)
    for r in refused:
        print(f"error: {r.message}", file=sys.stderr)
    checker: _Checker | None = None
    if jobs:
        device = choose_device(config.device)
        encoders = load_encoders(config.encoders, args, str(device))
        log.info("protecting %d photo(s): %s", len(jobs), config.describe())
        # tqdm's own ETA assumes equal photos; ours models the cost per pixel (cloak.eta).
        pixels = pixels_of([j.source for j in jobs])
        eta = EtaEstimator()
        overall = tqdm(
            total=len(jobs),
            unit="photo",
            desc="all photos",
            disable=args.quiet,
            position=0,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
        )
        bar = tqdm(total=config.steps, unit="step", leave=False, disable=args.quiet, position=1)
        if args.check:
            checker = _Checker(encoders, config)

        def show(ev: PhotoEvent) -> None:
            if ev.progress is not None:
                if ev.progress.stage == "prepare":
                    bar.reset(total=ev.progress.total)
                    bar.set_description(ev.job.source.name[:30])
                bar.n = ev.progress.step
                bar.refresh()
            elif ev.result is not None:
                overall.update(1)
                seconds = ev.result.seconds
                if checker is not None and ev.result.status == "protected":
                    bar.set_description(f"{ev.job.source.name[:21]}: checking")
                    seconds += checker.check(ev.result)
                if ev.result.status == "protected":
                    eta.observe(pixels[ev.index], seconds)
                left = eta.remaining(pixels[ev.index + 1 :])
                if left is not None:
                    overall.set_postfix_str(f"about {format_duration(left)} left")
                if ev.result.status == "failed":
                    tqdm.write(f"error: {ev.result.message}", file=sys.stderr)

        try:
            batch = run_batch(jobs, config, encoders, keep_clean=checker is not None)
            results.extend(run_to_end(batch, show))
        except KeyboardInterrupt:
            bar.close()
            overall.close()
            print(
                "\ninterrupted: finished photos are kept, nothing half-written remains; "
                "run the same command again to resume",
                file=sys.stderr,
            )
            return 130
        bar.close()
        overall.close()
    _print_summary(results, checker.checked if checker is not None else None)
    if checker is not None and checker.checked:
        print(checker.legend())
    return 1 if any(r.status == "failed" for r in results) else 0


class _Checker:
    """``cloak protect --check``: each saved photo measured right after its protection.

    Posted as is at the AI view's size, with the attacked encoders, in the attack's precision,
    seeded with the attack's own round trip of the original (:func:`cloak.metrics.seed_cache`),
    so only the protected file is encoded. The round trips are dropped after use, so a long
    batch holds none.
    """

    def __init__(self, encoders: Sequence[Any], config: Any) -> None:
        from cloak.device import use_bf16
        from cloak.encoding import encoder_device

        self.encoders = list(encoders)
        self.attacked = [e.name for e in encoders]
        self.bf16 = use_bf16(encoder_device(self.encoders[0]), config.precision)
        self.max_pixels = config.max_pixels
        self.checked: dict[Path, tuple[float | None, str]] = {}

    def check(self, res: Any) -> float:
        """Measure ``res``'s saved file; returns the seconds it took. A photo that cannot be
        measured keeps its protection and gets "-" (the reason is logged with -v)."""
        from cloak.metrics import ATTACKER_LONG_SIDE, OriginalCache, measure, seed_cache
        from cloak.photo_io import load_photo
        from cloak.tensors import to_tensor
        from cloak.verdict import verdict

        start = time.perf_counter()
        clean, res.clean = res.clean, []
        try:
            original = to_tensor(load_photo(res.source, max_pixels=self.max_pixels).rgb)
            saved = to_tensor(load_photo(res.dest, max_pixels=self.max_pixels).rgb)
            cache: OriginalCache = {}
            seed_cache(cache, original, clean, self.bf16, ATTACKER_LONG_SIDE)
            report = measure(
                original,
                saved,
                self.encoders,
                {},
                ATTACKER_LONG_SIDE,
                cache=cache,
                pixels=False,
                shift=False,
                bf16=self.bf16,
            )
            v = verdict(report, self.attacked)
            self.checked[res.dest] = (v.worst_db, v.level)
            log.info(
                "%s: measured in %.1f s (original's round trip from the attack: %s)",
                res.dest.name,
                time.perf_counter() - start,
                "yes" if clean and cache else "no",
            )
        except (CloakError, RuntimeError, MemoryError) as exc:
            # The photo is protected and saved; a failed measurement must not stop the batch.
            log.info("could not measure %s: %s", res.dest, exc)
            self.checked[res.dest] = (None, "not measured")
        return time.perf_counter() - start

    def legend(self) -> str:
        from cloak.metrics import ATTACKER_LONG_SIDE
        from cloak.verdict import BROKEN_DB, DEGRADED_DB, size_caveat

        return (
            f"damage: measured on {', '.join(self.attacked)}, the photo posted as is, weakest "
            f"encoder; below {DEGRADED_DB:g} dB an AI edit looks like the original's, from "
            f"{BROKEN_DB:g} dB it is visibly broken. {size_caveat([ATTACKER_LONG_SIDE])} "
            "`cloak check --reposts` adds platform re-posts."
        )


def _print_summary(
    results: Sequence, checked: dict[Path, tuple[float | None, str]] | None = None
) -> None:
    from cloak.verdict import format_db

    if not results:
        print("no photos found")
        return
    head = ("file", "seconds", "PSNR dB", "damage dB", "verdict", "status")
    rows = []
    for r in results:
        ps = f"{r.psnr:.2f}" if r.psnr is not None else "-"
        # Protected photos show their notes too (first frame only, CMYK converted, ...).
        status = f"{r.status}: {r.message}" if r.message else r.status
        db, level = (checked or {}).get(r.dest, (None, "-"))
        dmg = format_db(db) if db is not None else "-"
        rows.append((str(r.source), f"{r.seconds:.1f}", ps, dmg, level, status))
    w0 = min(60, max(len(r[0]) for r in [head, *rows]))
    for row in [head, *rows]:
        line = f"{row[0][-w0:]:<{w0}}  {row[1]:>8}  {row[2]:>8}"
        if checked is not None:
            line += f"  {row[3]:>9}  {row[4]:<14}"
        print(f"{line}  {row[5]}")
    counts = {s: sum(r.status == s for r in results) for s in ("protected", "skipped", "failed")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))


def cmd_check(args: argparse.Namespace) -> int:
    from cloak.compare import comparison_image
    from cloak.device import use_bf16
    from cloak.encoding import encoder_device
    from cloak.metrics import ATTACKER_LONG_SIDE, PLATFORMS, measure
    from cloak.models import DEFAULT_ENSEMBLE, REGISTRY, model_status
    from cloak.photo_io import load_photo
    from cloak.tensors import to_tensor
    from cloak.verdict import BROKEN_DB, DEGRADED_DB, verdict

    a = load_photo(args.original)
    b = load_photo(args.protected)
    if a.size != b.size:
        raise CloakError(
            f"{args.protected}: size {b.size} differs from {args.original} {a.size}; "
            "compare a photo with its own protected copy"
        )
    if args.encoders:
        names = list(args.encoders)
    else:
        present = {row.name for row in model_status(args.models_dir) if row.available}
        names = [n for n in REGISTRY if n in present] or list(DEFAULT_ENSEMBLE)
    encoders = load_encoders(names, args)
    x, y = to_tensor(a.rgb), to_tensor(b.rgb)
    # By default only what the output is about: the AI view's size, posted as is; each round
    # trip is computed once and reused for the picture.
    rts: dict[tuple[str, str, int, str], Any] = {}
    report = measure(
        x,
        y,
        encoders,
        PLATFORMS if args.reposts else {},
        list(args.sizes or [ATTACKER_LONG_SIDE]),
        roundtrips=rts,
        bf16=use_bf16(encoder_device(encoders[0]), args.precision),
    )
    picture = args.picture or args.protected.with_name(args.protected.stem + ".check.png")
    comparison_image(x, y, encoders, attacker_long_side=max(report.sizes), roundtrips=rts).save(
        picture
    )
    attacked = list(args.attacked or DEFAULT_ENSEMBLE)
    v = verdict(report, attacked)
    if args.json:
        print(json.dumps({**report.as_dict(), "verdict": dataclasses.asdict(v)}, indent=2))
        return 0
    print(f"original:  {args.original}")
    print(f"protected: {args.protected}  ({report.width}x{report.height})")
    print(
        f"imperceptibility: PSNR {report.psnr:.2f} dB, SSIM {report.ssim:.4f}, "
        f"L-inf {report.linf_255:.1f}/255"
    )
    sizes = "/".join(str(z) for z in report.sizes)
    posted = (
        "posted as is and after platform re-posts"
        if args.reposts
        else "posted as is (--reposts adds platform re-posts)"
    )
    more = "" if args.sizes else "; --sizes 512,768,1024 adds other attacker sizes"
    print(f"AI editors simulated at {sizes} px long side{more}, {posted} (damage in dB):")
    print(f"{'encoder':<18} {'posted as':<10} {'damage dB':>18} {'AI-view SSIM':>13} {'shift':>7}")
    names = list(dict.fromkeys(s.encoder for s in report.scores))
    for name in names:
        tag = name if name in attacked else f"{name} (held out)"
        for sc in dict.fromkeys(s.scenario for s in report.scores):
            mine = [s for s in report.scores if s.encoder == name and s.scenario == sc]
            dmg = " / ".join("n/a" if s.damage_db is None else f"{s.damage_db:.2f}" for s in mine)
            big = mine[-1]
            rs = "n/a" if big.roundtrip_ssim is None else f"{big.roundtrip_ssim:.3f}"
            print(f"{tag:<18} {sc:<10} {dmg:>18} {rs:>13} {big.latent_shift:>6.1f}x")
    print(
        f"damage: how much worse an AI editor's reconstruction gets; below {DEGRADED_DB:g} dB it "
        f"looks like the original's, from {BROKEN_DB:g} dB it is visibly broken "
        "(docs/img/verdict_calibration.png). AI-view SSIM and shift at the largest size; shift: "
        "latent change in units of a harmless JPEG-95 re-save."
    )
    if v.worst_db is not None:
        print(f"verdict ({v.level}): {v.sentence}")
        print(
            f"weakest case: {v.worst_case}, {v.worst_db:.2f} dB; "
            f"measured on {', '.join(v.measured)}"
        )
        print(v.caveat)
    else:
        print(f"verdict: {v.sentence}")
    for name, shift in v.held_out:
        print(f"held out (not attacked, not in the verdict): {name}, latent moved {shift:.1f}x")
    print(f"comparison picture: {picture}")
    return 0


def _print_models_table(models_dir: Path | None) -> None:
    from cloak.models import model_status

    rows = model_status(models_dir, check=True)
    head = (
        f"{'name':<10} {'default':<8} {'installed':<10} {'pinned':<9} {'verified':<9} "
        f"{'latent space':<14} {'ch':>3} {'/f':>3} {'range':<8} {'license':<11} source"
    )
    print(head)
    for r in rows:
        rng = f"[{r.input_range[0]:g},{r.input_range[1]:g}]"
        where = f"{'github' if r.source == 'github' else 'hf'}:{r.repo_id}"
        print(
            f"{r.name:<10} {'yes' if r.default else '':<8} {r.installed:<10} {r.pinned:<9} "
            f"{r.verified:<9} {r.latent_space:<14} {r.channels:>3} {r.downsample:>3} "
            f"{rng:<8} {r.license:<11} {where}"
        )
    print(
        "installed: every file found locally; pinned: what fixes the files' bytes; "
        "verified: the files match their pins."
    )


def cmd_models(args: argparse.Namespace) -> int:
    from cloak.models import DEFAULT_ENSEMBLE, download, verify

    if args.models_command == "list":
        _print_models_table(args.models_dir)
        return 0
    if args.models_command == "download":
        names = list(dict.fromkeys([*(DEFAULT_ENSEMBLE if args.all else ()), *args.names]))
        if not names:
            raise CloakError(
                "name the encoders to download (see: cloak models list), "
                "or use --all for the default set"
            )
        if args.offline or os.environ.get("HF_HUB_OFFLINE") == "1":
            raise CloakError("cannot download while offline (--offline or HF_HUB_OFFLINE=1)")
        for name in names:
            for path in download(name, models_dir=args.models_dir):
                print(f"{name}: {path}")
        return 0
    bad = 0
    for row in verify(args.models_dir):
        print(f"{row.name:<10} {row.file:<28} {row.status:<10} {row.detail}")
        bad += row.status == "corrupt"
    return 1 if bad else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cloak.evaluate import run_evaluation

    return run_evaluation(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cloak`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    warnings.filterwarnings("ignore", category=UserWarning, module="kornia")
    try:
        # Only the commands that run encoders switch by themselves when memory is short.
        low_memory = choose_low_memory(
            getattr(args, "low_memory", None),
            auto=args.command in ("protect", "check", "evaluate"),
        )
        if low_memory.on:
            restart_with_huge_pages()
        configure_process(getattr(args, "threads", None), low_memory=low_memory.on)
        if low_memory.why == "short" and low_memory.free is not None:
            print(
                f"cloak: {low_memory.free / 1e9:.1f} GB of memory free, under "
                f"{LOW_MEMORY_AUTO_BELOW / 1e9:.0f} GB: running in low-memory mode (up to about "
                f"30 % slower on a CPU without bf16; --no-low-memory or {LOW_MEMORY_ENV}=0 "
                "keeps the faster mode)",
                file=sys.stderr,
            )
        if args.command == "protect":
            return cmd_protect(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "models":
            return cmd_models(args)
        return cmd_evaluate(args)
    except CloakError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # Weight errors come from cloak.models, which does not know CloakError.
        from cloak.models import WeightsError

        if isinstance(exc, WeightsError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
