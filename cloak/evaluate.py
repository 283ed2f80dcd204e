"""``cloak evaluate``: protect photos with each preset and report every measure, with pictures.

For every photo and every preset (and a PhotoGuard-style reference, :mod:`cloak.reference`) the
photo is protected, quantised as a saved file would be, and measured with
:func:`cloak.metrics.measure` against the attacked encoders and the held-out ones (encoders the
attack never saw). The report folder gets ``report.md``, ``report.json`` and PNG pictures:
damage vs PSNR, before/after grids and the attacker's view (decoded round trips).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cloak.config import ProtectConfig, preset
from cloak.engine import protect, run_to_end
from cloak.errors import CloakError, ConfigError
from cloak.metrics import (
    ATTACKER_LONG_SIDE,
    ATTACKER_SIZES,
    OriginalCache,
    measure,
    psnr,
    roundtrip,
)
from cloak.models.base import AutoEncoder
from cloak.photo_io import load_photo
from cloak.reference import REFERENCE_WORK_SIZE, reference_protect
from cloak.report import SCENARIOS, Evaluation, Row, Views, fmt, median, score, worst
from cloak.tensors import quantize, to_array, to_tensor
from cloak.transforms import resize_long_side

BASELINE = "photoguard-ref"
"""The method name of the reference attack in tables."""
TARGETS = {
    "psnr": 36.0,
    "ssim": 0.97,
    "damage_direct": 6.0,
    "damage_1080/q80": 5.0,
    "holdout_shift": 6.0,
}
"""What the standard preset should reach, as medians over photos: damage at 768 and at 1024 px
(the project's protection targets)."""
TARGET_SIZES = (768, 1024)
"""The attacker sizes the damage targets must hold at."""
THUMB = 256


def evaluate(
    photos: Sequence[Path],
    configs: dict[str, ProtectConfig],
    attack_encoders: Sequence[AutoEncoder],
    holdout_encoders: Sequence[AutoEncoder] = (),
    out_dir: Path | None = None,
    baseline_steps: int = 200,
    baseline_work_size: int = REFERENCE_WORK_SIZE,
    attacker_long_side: int = ATTACKER_LONG_SIDE,
    log: Any = None,
    attacker_sizes: Sequence[int] = ATTACKER_SIZES,
) -> Evaluation:
    """Protect every photo with every config (and the reference), measure, and write the report.

    Args:
        photos: Photo files; a photo that cannot be read is recorded in ``failed``.
        configs: ``{method name: job}``; their ``encoders`` are ignored in favour of
            ``attack_encoders`` (already loaded).
        attack_encoders: Encoders the protection attacks; the first one with a decoder is also
            the reference attack's encoder.
        holdout_encoders: Encoders only measured (transfer to unseen encoders).
        out_dir: Report folder; None writes nothing.
        baseline_steps: Steps of the reference attack; 0 leaves it out.
        baseline_work_size: Long side at which the reference attack runs.
        attacker_long_side: The attacker's size shown in the AI-view pictures and used for
            the face-region damage.
        log: Called with progress lines (``print`` by default).
        attacker_sizes: Every attacker size the measures are taken at.
    """
    say = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    if not configs:
        raise ConfigError("name at least one preset to evaluate")
    if not attack_encoders:
        raise ConfigError("at least one encoder to attack is needed")
    measured = [*attack_encoders, *holdout_encoders]
    ref_encoder = next((e for e in attack_encoders if e.has_decoder), attack_encoders[0])
    ev = Evaluation(
        methods=list(configs) + ([BASELINE] if baseline_steps > 0 else []),
        attacked=[e.name for e in attack_encoders],
        holdout=[e.name for e in holdout_encoders],
        sizes=list(attacker_sizes),
    )
    face_enc = next((e for e in attack_encoders if e.has_decoder), None)
    for name, cfg in configs.items():
        ev.configs[name] = cfg.describe()
    if baseline_steps > 0:
        ev.configs[BASELINE] = (
            f"PhotoGuard-style PGD toward gray, eps=8.0/255 steps={baseline_steps} "
            f"work={baseline_work_size}px encoder={ref_encoder.name}"
        )
    views: dict[str, Views] = {}
    for path in photos:
        path = Path(path)
        try:
            photo = load_photo(path)
        except CloakError as exc:
            ev.failed[str(path)] = str(exc)
            say(f"error: {exc}")
            continue
        original = to_tensor(photo.rgb)
        o_small = resize_long_side(original, attacker_long_side)
        v = Views(original=resize_long_side(original, THUMB))
        full_ai: dict[str, torch.Tensor] = {}
        for enc in measured:
            if enc.has_decoder:
                full_ai[enc.name] = roundtrip(enc, o_small)
                v.ai_original[enc.name] = resize_long_side(full_ai[enc.name], THUMB)
        face = _largest_face(o_small) if face_enc is not None else None
        cache: OriginalCache = {}
        for method in ev.methods:
            start = time.perf_counter()
            try:
                if method == BASELINE:
                    res = reference_protect(
                        original, ref_encoder, steps=baseline_steps, work_size=baseline_work_size
                    )
                    protected = res.protected
                else:
                    cfg = configs[method]
                    protected = run_to_end(protect(original, attack_encoders, cfg)).protected
            except CloakError as exc:
                ev.failed[f"{path} ({method})"] = str(exc)
                say(f"error: {path} ({method}): {exc}")
                continue
            seconds = time.perf_counter() - start
            saved = quantize(protected)
            report = measure(
                original, saved, measured, attacker_long_side=list(attacker_sizes), cache=cache
            )
            v.protected[method] = resize_long_side(saved, THUMB)
            p_small = resize_long_side(saved, attacker_long_side)
            face_db = None
            for enc in measured:
                if enc.has_decoder:
                    rt_p = roundtrip(enc, p_small)
                    v.ai_protected.setdefault(enc.name, {})[method] = resize_long_side(rt_p, THUMB)
                    if face is not None and face_enc is not None and enc.name == face_enc.name:
                        face_db = _face_damage(o_small, full_ai[enc.name], rt_p, face)
            ev.rows.append(Row(path.name, method, seconds, report, face_db))
            first = ev.attacked[0]
            dmg = " / ".join(fmt(report.damage(first, "direct", z)) for z in attacker_sizes)
            say(
                f"{path.name} {method}: PSNR {report.psnr:.2f} dB, damage {first} {dmg} dB "
                f"at {'/'.join(map(str, attacker_sizes))} px, {seconds:.1f} s"
            )
        views[path.name] = v
    if out_dir is not None:
        write_report(ev, views, Path(out_dir))
    return ev


def _largest_face(x: torch.Tensor) -> tuple[int, int, int, int] | None:
    """The largest face in ``x``, or None (also when OpenCV is not installed)."""
    from cloak.faces import find_faces

    try:
        faces = find_faces(x)
    except ConfigError:
        return None
    return faces[0] if faces else None


def _face_damage(
    o: torch.Tensor, rt_o: torch.Tensor, rt_p: torch.Tensor, box: tuple[int, int, int, int]
) -> float:
    """Edit damage (dB) on the face box alone."""
    left, top, w, h = box

    def crop(t: torch.Tensor) -> torch.Tensor:
        return t[..., top : top + h, left : left + w]

    return psnr(crop(rt_o), crop(o)) - psnr(crop(rt_p), crop(o))


# --------------------------------------------------------------------------- report


def _sizes_label(ev: Evaluation) -> str:
    return "/".join(str(z) for z in ev.sizes)


def _head(ev: Evaluation) -> list[str]:
    head = ["PSNR", "SSIM", "L-inf"]
    for e in ev.attacked + ev.holdout:
        tag = f"{e}{' (held out)' if e in ev.holdout else ''}"
        head += [f"{tag} dB direct at {_sizes_label(ev)} px", "dB 1080q80", "dB 720q70"]
        head += ["AI-view SSIM", "latent shift"]
    return [*head, "face dB", "seconds"]


def _cells(ev: Evaluation, vals: dict[str, float | None]) -> list[str]:
    out = [fmt(vals["psnr"]), fmt(vals["ssim"], 4), fmt(vals["linf"], 1)]
    for e in ev.attacked + ev.holdout:
        for sc in SCENARIOS:
            out.append(" / ".join(fmt(vals[f"{e}/{sc}@{z}"]) for z in ev.sizes))
        out += [fmt(vals[f"{e}/rt_ssim"], 3), fmt(vals[f"{e}/shift"], 1, "x")]
    return [*out, fmt(vals["face"]), fmt(vals["seconds"], 1)]


def _photo_table(ev: Evaluation, method: str) -> list[str]:
    head = ["photo", *_head(ev)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = ev.rows_of(method)
    for r in rows:
        lines.append("| " + " | ".join([r.photo, *_cells(ev, _values(r, ev))]) + " |")
    for how in ("median", "worst"):
        stats = _stats(ev, method, how)
        if stats is not None:
            lines.append("| " + " | ".join([f"**{how}**", *_cells(ev, stats)]) + " |")
    return lines


_LOWER_IS_BETTER = ("seconds", "linf", "/rt_ssim")
"""Measures where a higher value is worse for the user (time, visible change, AI-view SSIM)."""


def _values(r: Row, ev: Evaluation) -> dict[str, float | None]:
    vals: dict[str, float | None] = {
        "psnr": r.report.psnr,
        "ssim": r.report.ssim,
        "linf": r.report.linf_255,
        "seconds": r.seconds,
        "face": r.face_db,
    }
    view = max(ev.sizes) if ev.sizes else None
    for e in ev.attacked + ev.holdout:
        for sc in SCENARIOS:
            for z in ev.sizes:
                vals[f"{e}/{sc}@{z}"] = score(r.report, e, sc, "damage_db", z)
        vals[f"{e}/rt_ssim"] = score(r.report, e, "direct", "roundtrip_ssim", view)
        vals[f"{e}/shift"] = score(r.report, e, "direct", "latent_shift", view)
    return vals


def _stats(ev: Evaluation, method: str, how: str) -> dict[str, float | None] | None:
    """Median or worst (per measure, over photos) of one method's rows; None without rows."""
    vals = [_values(r, ev) for r in ev.rows_of(method)]
    if not vals:
        return None
    if how == "median":
        return {k: median([v[k] for v in vals]) for k in vals[0]}
    return {
        k: worst([v[k] for v in vals], not any(t in k for t in _LOWER_IS_BETTER)) for k in vals[0]
    }


def summary(ev: Evaluation, how: str = "median") -> list[dict[str, Any]]:
    """Per method: the median (or worst) over photos of every measure."""
    out = []
    for m in ev.methods:
        stats = _stats(ev, m, how)
        if stats is not None:
            out.append({"method": m, "photos": len(ev.rows_of(m)), **stats})
    return out


def target_check(
    ev: Evaluation, method: str = "standard"
) -> list[tuple[str, float | None, str, bool]]:
    """``(measure, value, target, met)`` for the standard preset's medians over photos."""
    row = next((s for s in summary(ev) if s["method"] == method), None)
    if row is None:
        return []
    first = ev.attacked[0]
    checks: list[tuple[str, float | None, str, bool]] = []

    def add(label: str, value: float | None, target: float) -> None:
        checks.append((label, value, f">= {target:g}", value is not None and value >= target))

    add("PSNR dB", row["psnr"], TARGETS["psnr"])
    add("SSIM", row["ssim"], TARGETS["ssim"])
    for z in (z for z in TARGET_SIZES if z in ev.sizes):
        add(
            f"damage {first} direct at {z} px dB",
            row[f"{first}/direct@{z}"],
            TARGETS["damage_direct"],
        )
        add(
            f"damage {first} 1080/q80 at {z} px dB",
            row[f"{first}/1080/q80@{z}"],
            TARGETS["damage_1080/q80"],
        )
    for h in ev.holdout:
        add(f"latent shift {h} (held out) x JPEG-95", row[f"{h}/shift"], TARGETS["holdout_shift"])
    return checks


def markdown(ev: Evaluation) -> str:
    """The report as Markdown."""
    lines = [
        "# Cloak evaluation",
        "",
        f"Attacked encoders: {', '.join(ev.attacked)}. "
        f"Held-out encoders (measured only): {', '.join(ev.holdout) or 'none'}.",
        "",
        "Damage: how much worse the attacker's round trip D(E(x)) reconstructs the photo (dB) "
        f"at each attacker size ({_sizes_label(ev)} px long side), directly and after a "
        "simulated platform re-encode (1080 px + "
        "JPEG q80, 720 px + JPEG q70). AI-view SSIM: of the protected round trip to the "
        f"original at {max(ev.sizes, default=0)} px (lower is more damage). Latent shift: "
        "|E(protected) - E(original)| in units of a JPEG-95 re-save. Face dB: damage on the "
        "largest face alone (first attacked encoder). Seconds: protection time per photo. "
        "Worst: per measure, the least favourable photo.",
        "",
        "## Methods",
        "",
    ]
    lines += [f"- **{m}**: {ev.configs.get(m, '')}" for m in ev.methods]
    for how in ("median", "worst"):
        lines += ["", f"## Summary ({how} over photos, per measure)", ""]
        head = ["method", "photos", *_head(ev)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for st in summary(ev, how):
            lines.append(
                "| " + " | ".join([st["method"], str(st["photos"]), *_cells(ev, st)]) + " |"
            )
    checks = target_check(ev)
    if checks:
        lines += ["", "## Standard preset against the targets", ""]
        lines += ["| measure | median | target | met |", "|---|---|---|---|"]
        for label, value, target, ok in checks:
            lines.append(f"| {label} | {fmt(value, 3)} | {target} | {'yes' if ok else 'NO'} |")
    for m in ev.methods:
        lines += ["", f"## {m}", ""]
        lines += _photo_table(ev, m)
    if ev.failed:
        lines += ["", "## Photos not evaluated", ""]
        lines += [f"- `{p}`: {msg}" for p, msg in ev.failed.items()]
    if ev.files:
        lines += ["", "## Pictures", ""]
        lines += [f"![{f}]({f})" for f in ev.files]
    return "\n".join(lines) + "\n"


def write_report(ev: Evaluation, views: dict[str, Views], out_dir: Path) -> None:
    """Write ``report.md``, ``report.json`` and the PNG pictures into ``out_dir``."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CloakError(f"{out_dir}: cannot create the report folder ({exc.strerror})") from exc
    if ev.rows:
        from cloak import evaluate_plots as plots

        ev.files += plots.damage_vs_psnr(ev, out_dir / "damage_vs_psnr.png")
        ev.files += plots.damage_vs_seconds(ev, out_dir / "damage_vs_seconds.png")
        ev.files += plots.shift_vs_psnr(ev, out_dir / "shift_vs_psnr.png")
        ev.files += plots.before_after(ev, views, out_dir / "before_after.png")
        ev.files += plots.ai_views(ev, views, out_dir)
    payload = {
        "attacked": ev.attacked,
        "holdout": ev.holdout,
        "methods": ev.methods,
        "configs": ev.configs,
        "targets": TARGETS,
        "sizes": ev.sizes,
        "summary": summary(ev),
        "worst": summary(ev, "worst"),
        "rows": [r.as_dict() for r in ev.rows],
        "failed": ev.failed,
        "files": ev.files,
    }
    (out_dir / "report.json").write_text(json.dumps(payload, indent=2, default=_json_default))
    (out_dir / "report.md").write_text(markdown(ev))


def _json_default(o: object) -> object:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if hasattr(o, "__dataclass_fields__"):
        return asdict(o)  # type: ignore[call-overload]
    return str(o)


# --------------------------------------------------------------------------- command line


def configs_from_args(args: argparse.Namespace) -> dict[str, ProtectConfig]:
    """``{preset: job}`` from ``--presets`` and ``--encoders``."""
    names = [n.strip().lower() for n in str(args.presets).split(",") if n.strip()]
    if not names:
        raise ConfigError("--presets is empty; name presets, e.g. --presets low,standard,high")
    out: dict[str, ProtectConfig] = {}
    for n in names:
        cfg = preset(n).replace(device=args.device)
        if args.encoders:
            cfg = cfg.replace(encoders=tuple(args.encoders))
        out[n] = cfg
    return out


def run_evaluation(args: argparse.Namespace) -> int:
    """The ``cloak evaluate`` command; returns the exit status (1 when a photo failed)."""
    from cloak.device import choose_device
    from cloak.ensemble import load_encoders

    configs = configs_from_args(args)
    first = next(iter(configs.values()))
    device = str(choose_device(args.device))
    attack = load_encoders(first.encoders, args, device)
    holdout_names = [n for n in (args.holdout or ()) if n not in {e.name for e in attack}]
    holdout = load_encoders(holdout_names, args, device) if holdout_names else []
    steps = getattr(args, "baseline_steps", 200)
    if steps < 0:
        raise ConfigError(f"--baseline-steps {steps} must be 0 (off) or more")
    ev = evaluate(args.photos, configs, attack, holdout, args.output, baseline_steps=steps)
    print(f"report: {Path(args.output) / 'report.md'}")
    lead = ev.attacked[0]
    for st in summary(ev):
        dmg = " / ".join(fmt(st[f"{lead}/direct@{z}"]) for z in ev.sizes)
        rep = " / ".join(fmt(st[f"{lead}/1080/q80@{z}"]) for z in ev.sizes)
        print(
            f"{st['method']:<15} median PSNR {fmt(st['psnr'])} dB  SSIM {fmt(st['ssim'], 4)}  "
            f"damage {lead} at {_sizes_label(ev)} px: {dmg} dB direct, {rep} dB after "
            f"1080/q80  {fmt(st['seconds'], 1)} s"
        )
    if not ev.rows:
        print("error: no photo could be evaluated", file=sys.stderr)
        return 2
    return 1 if ev.failed else 0


def thumbnail_array(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) -> (H, W, 3) array for matplotlib."""
    return to_array(x)
