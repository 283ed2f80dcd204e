"""Speed, memory and damage of each preset through the real file path, on both CPU paths.

Run from the repository root::

    python -m benchmarks.bench                       # phone + 12.6 MP portraits, both paths
    python -m benchmarks.bench --cli-batch 100 --cli-batch-steps 2 --sizes "" --no-unit
    python -m benchmarks.bench --sizes 1,12,50 --json /tmp/bench.json
    python -m benchmarks.bench --quick                # tiny sizes and steps (the test uses it)

Every run first reports the machine (CPU model and flags, threads, load average) and measures
the *unit*: a plain fp32 forward and backward of the TAEF2 encoder and decoder at 640x480, so
seconds can be compared across machines as units. Each case then runs once per precision path
(``auto``, and on a CPU with fast bf16 also ``fp32``: bf16 forced off, what most laptops run):

- in-process: a fresh subprocess with ``torch.set_num_threads(threads)`` so its peak RSS
  (``VmHWM``) is its own: load -> attack -> lift -> save, each phase timed, then the damage of
  the saved file is measured with TAEF2 (direct, 1080/q80, 720/q70) after the peak was read;
- the ``cloak protect`` process, timed from outside: wall time, and peak RSS from the operating
  system (``wait4``'s ``ru_maxrss``), with its resident size sampled while it runs.

The same photo is protected by the PhotoGuard-style reference (``cloak.reference``) and two
ratios are printed: our seconds / reference seconds, and our damage / reference damage after
1080/q80. ``--cli-batch N`` runs one ``cloak protect`` process over N real portraits (memory
over a long batch); ``--batch N`` runs the in-process batch that checks the ETA.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform as _platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cloak.metrics import ATTACKER_LONG_SIDE

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO.parent / "shared" / "photos"
SOURCE = "astronaut.png"
PORTRAITS = PHOTOS / "portraits"
SIZES: dict[str, tuple[int, int] | str] = {
    "phone": "img13.jpg",
    "12.6": "img49.jpg",
    "1": (1152, 864),
    "12": (4000, 3000),
    "14": (4320, 3240),
    "50": (8160, 6120),
}
"""Case label -> a real portrait in ``../shared/photos/portraits``, read in place (``phone``:
2048x1364, 2.8 MP; ``12.6``: 4352x2903), or the (width, height) of a phone-like 4:3 JPEG made
from the astronaut."""
QUICK_SIZES: dict[str, tuple[int, int] | str] = {"0.05": (256, 192)}
CLI_BATCH_SOURCES = (
    "img13.jpg",
    "img23.jpg",
    "img30.jpg",
    "img39.jpg",
    "img47.jpg",
    "img54.jpg",
    "img58.jpg",
    "img7.jpg",
)
"""The phone-size portraits (1.5 to 4.8 MP, both orientations) a CLI batch cycles through."""
UNIT_SIZE = (480, 640)
"""(height, width) of the unit: a plain fp32 forward + backward of TAEF2's encoder and decoder."""
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_vnni")
SCENARIOS = ("direct", "1080/q80", "720/q70")


# --------------------------------------------------------------------------- test photos


def load_at(path: Path, long_side: int, mirror: bool = False, upscale: bool = True) -> Any:
    """The photo as framed (EXIF orientation applied), its long side resized to ``long_side``
    px (Lanczos; without ``upscale`` a smaller photo keeps its size), mirrored if asked, as a
    (1, 3, h, w) tensor in [0, 1]."""
    import numpy as np
    from PIL import Image, ImageOps

    from cloak.tensors import to_tensor

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        s = long_side / max(w, h)
        if upscale or s < 1.0:
            im = im.resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS)
        a = np.asarray(im, dtype=np.float32) / 255
    return to_tensor(a[:, ::-1].copy() if mirror else a)


def make_photo(size: tuple[int, int], dest: Path, seed: int = 0, source: str = SOURCE) -> Path:
    """A phone-like JPEG of ``size`` made from a shared photo: 4:3 crop, resize, mild grain."""
    import numpy as np
    from PIL import Image

    w, h = size
    with Image.open(PHOTOS / source) as im:
        src = im.convert("RGB")
    sw, sh = src.size
    # Crop to the target aspect ratio around the centre, then resize (upscale for big sizes).
    if sw / sh > w / h:
        cw, ch = round(sh * w / h), sh
    else:
        cw, ch = sw, round(sw * h / w)
    left, top = (sw - cw) // 2, (sh - ch) // 2
    img = src.crop((left, top, left + cw, top + ch)).resize((w, h), Image.Resampling.LANCZOS)
    rng = np.random.default_rng(seed)
    arr = np.asarray(img, dtype=np.int16)
    arr = arr + rng.integers(-2, 3, size=arr.shape, dtype=np.int16)
    dest.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(dest, "JPEG", quality=92)
    return dest


def machine_info(threads: int) -> dict[str, Any]:
    """The CPU model, the flags that decide the precision path, threads and load average."""
    model, flags = _platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "threads": threads,
        "flags": [f for f in CPU_FLAGS if f in flags],
        "loadavg": list(os.getloadavg()),
    }


def path_of(precision: str) -> str:
    """``bf16`` or ``fp32``: what ``precision`` runs on this machine's CPU."""
    import torch

    from cloak.device import use_bf16

    return "bf16" if use_bf16(torch.device("cpu"), precision) else "fp32"


def measure_unit(spec: dict[str, Any]) -> dict[str, Any]:
    """The unit, in this process: fp32 forward + backward of TAEF2's encoder and decoder.

    One warm-up at the full size (kernels, first-touch memory), then the fastest of
    ``spec["repeats"]`` timed runs (the least disturbed by other work on a shared machine).
    """
    import torch

    torch.set_num_threads(int(spec["threads"]))
    from cloak.device import keep_freed_memory

    keep_freed_memory()
    from cloak.models import load_encoder

    enc = load_encoder("taef2", models_dir=spec["models_dir"], offline=True)
    for param in enc.parameters():
        param.requires_grad_(False)
    h, w = spec["size"]
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(1 + int(spec["repeats"])):
        x = torch.rand(1, 3, h, w, generator=gen).requires_grad_(True)
        t = time.perf_counter()
        enc.decode(enc.encode(x)).square().mean().backward()
        times.append(time.perf_counter() - t)
    return {"unit_s": min(times[1:]), "unit_runs_s": times[1:], "size": [h, w]}


# --------------------------------------------------------------------------- worker side


def _peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM) in MB."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _damage(encoder: Any, original: Any, saved: Any, side: int) -> dict[str, float]:
    from cloak.metrics import PLATFORMS, platform, score_encoder

    out: dict[str, float] = {}
    s = score_encoder(encoder, original, saved, "direct", side)
    out["direct"] = float(s.damage_db or 0.0)
    for name, (long_side, q) in PLATFORMS.items():
        o, p = platform(original, long_side, q), platform(saved, long_side, q)
        s = score_encoder(encoder, o, p, name, side)
        out[name] = float(s.damage_db or 0.0)
    return out


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """One timed case in this process: ``spec`` names the photo, method and settings."""
    import torch

    torch.set_num_threads(int(spec["threads"]))
    # The process-wide allocator setting the cloak command makes at its entry point.
    from cloak.device import keep_freed_memory

    keep_freed_memory()
    from cloak.config import preset
    from cloak.engine import protect, run_to_end
    from cloak.metrics import psnr
    from cloak.models import load_encoder
    from cloak.photo_io import SaveOptions, load_photo, save_photo
    from cloak.reference import reference_protect
    from cloak.tensors import quantize, to_array, to_tensor

    t_start = time.perf_counter()
    encoder = load_encoder("taef2", models_dir=spec["models_dir"], offline=True)
    method = spec["method"]
    precision = spec.get("precision", "auto")
    if method == "reference":
        cfg = None
    else:
        cfg = preset(method).replace(
            encoders=("taef2",), device="cpu", precision=precision, **spec["overrides"]
        )

    # Warm-up on a small image: kernels, bf16 paths and the attack's activation memory.
    warm = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    if cfg is None:
        reference_protect(warm, encoder, steps=2, work_size=96, device="cpu", precision=precision)
    else:
        run_to_end(protect(warm, [encoder], cfg.replace(steps=2, work_size=96)))
    setup_s = time.perf_counter() - t_start

    src = Path(spec["photo"])
    dest = Path(spec["out_dir"]) / f"{method}_{src.stem}.jpg"
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    photo = load_photo(src)
    original = to_tensor(photo.rgb)
    t1 = time.perf_counter()
    if cfg is None:
        ref = reference_protect(
            original,
            encoder,
            steps=int(spec["ref_steps"]),
            work_size=int(spec["ref_work"]),
            precision=precision,
        )
        protected = ref.protected
        attack_s, lift_s = ref.attack_seconds, ref.lift_seconds
    else:
        lift_at = [t1]

        def note_lift(rec: Any) -> None:
            if rec.stage == "lift":
                lift_at[0] = time.perf_counter()

        protected = run_to_end(protect(original, [encoder], cfg), note_lift).protected
        t2 = time.perf_counter()
        attack_s, lift_s = lift_at[0] - t1, t2 - lift_at[0]
    t3 = time.perf_counter()
    saved = quantize(protected)
    del protected
    save_photo(photo, to_array(saved), dest, SaveOptions(overwrite=True))
    t4 = time.perf_counter()
    peak = _peak_rss_mb()
    result: dict[str, Any] = {
        "method": method,
        "path": path_of(precision),
        "photo": src.name,
        "width": photo.size[0],
        "height": photo.size[1],
        "megapixels": photo.size[0] * photo.size[1] / 1e6,
        "setup_s": setup_s,
        "load_s": t1 - t0,
        "attack_s": attack_s,
        "lift_s": lift_s,
        "save_s": t4 - t3,
        "photo_s": t4 - t0,
        "peak_rss_mb": peak,
        "steps": int(spec["ref_steps"]) if cfg is None else cfg.steps,
    }
    # Measured after the peak was read, from the file as written.
    written = to_tensor(load_photo(dest).rgb)
    result["psnr"] = psnr(written, original)
    result["damage_db"] = _damage(encoder, original, written, int(spec["attacker_side"]))
    return result


# --------------------------------------------------------------------------- parent side


def _spawn(spec: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench", "--worker", json.dumps(spec)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(spec["threads"])},
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark case {spec['method']} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = wall
    return result


def _cli_command() -> list[str]:
    """How a user starts ``cloak``: the console script beside this Python, else the module."""
    script = Path(sys.executable).with_name("cloak")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cloak.cli import main; sys.exit(main())"]


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run_cli(args: list[str], threads: int, sample_s: float = 0.5) -> dict[str, Any]:
    """Run ``cloak <args>`` as a user would and measure it from outside.

    Returns the wall time, the peak RSS the kernel reports for the child (``wait4``), and the
    resident size sampled every ``sample_s`` seconds (to see whether a long batch grows).
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)}
    cmd = _cli_command() + args + ["--threads", str(threads)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(sample_s):
            rss = _rss_mb(proc.pid)
            if rss is not None:
                samples.append((round(time.perf_counter() - start, 2), round(rss, 1)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    # Read the pipes in threads so a chatty child never blocks; wait4 gives its own rusage.
    outs: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda n=n, s=s: outs.__setitem__(n, s.read()), daemon=True)
        for n, s in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{outs.get('err', '')[-3000:]}")
    peak_kb = usage.ru_maxrss  # kilobytes on Linux
    return {
        "cli_wall_s": wall,
        "cli_peak_rss_mb": peak_kb / 1024.0,
        "rss_samples": samples,
        "cli_command": " ".join(["cloak"] + args + ["--threads", str(threads)]),
    }


def cli_protect_args(
    photos: list[Path],
    out_dir: Path,
    preset_name: str,
    precision: str,
    models_dir: str,
    overrides: dict[str, Any],
    low_memory: bool = False,
) -> list[str]:
    """``cloak protect`` arguments for the same job the in-process case runs, in the memory mode
    named (``--no-low-memory`` otherwise, so a machine short of memory does not switch
    by itself)."""
    args = [
        "protect",
        *map(str, photos),
        "-o",
        str(out_dir),
        "--preset",
        preset_name,
        "--encoders",
        "taef2",
        "--models-dir",
        models_dir,
        "--offline",
        "--device",
        "cpu",
        "--precision",
        precision,
        "--overwrite",
        "-q",
        "--low-memory" if low_memory else "--no-low-memory",
    ]
    if "steps" in overrides:
        args += ["--steps", str(overrides["steps"])]
    if "work_size" in overrides:
        args += ["--work-size", str(overrides["work_size"])]
    return args


def run_cli_batch(
    n: int,
    steps: int | None,
    precision: str,
    models_dir: str,
    threads: int,
    folder: Path,
    quick: bool,
    memory: str = "default",
) -> dict[str, Any]:
    """One ``cloak protect`` process over ``n`` phone-size portraits: time and memory.

    ``memory`` is ``"default"``, or ``"low"`` for ``cloak protect --low-memory``."""
    src_dir = folder / "cli_batch_in"
    if quick:
        shapes: list[tuple[int, int]] = [(320, 240), (240, 320), (400, 300)]
        paths = [make_photo(shapes[i % 3], src_dir / f"p{i:03d}.jpg", i) for i in range(n)]
    else:
        from PIL import Image

        paths = []
        for i in range(n):
            name = CLI_BATCH_SOURCES[i % len(CLI_BATCH_SOURCES)]
            with Image.open(PORTRAITS / name) as im:
                size = im.size
            # Each copy gets its own grain, so no two files of the batch are the same photo.
            paths.append(make_photo(size, src_dir / f"p{i:03d}.jpg", i, f"portraits/{name}"))
    overrides: dict[str, Any] = {}
    if steps is not None:
        overrides["steps"] = steps
    if quick:
        overrides.update({"steps": steps or 2, "work_size": 96})
    out_dir = folder / f"cli_batch_out_{precision}_{memory}"
    cli_args = cli_protect_args(
        [src_dir], out_dir, "standard", precision, models_dir, overrides, memory == "low"
    )
    res = run_cli(cli_args, threads)
    written = sorted(out_dir.glob("*"))
    if len(written) != n:
        raise RuntimeError(f"the CLI batch wrote {len(written)} of {n} photos")
    pixels = []
    from PIL import Image

    for p in paths:
        with Image.open(p) as im:
            pixels.append(im.size[0] * im.size[1])
    rss = [r for _, r in res["rss_samples"]]
    half = len(rss) // 2
    return {
        **res,
        "path": path_of(precision),
        "precision": precision,
        "memory": memory,
        "photos": n,
        "steps": overrides.get("steps"),
        "megapixels_mean": sum(pixels) / len(pixels) / 1e6,
        "seconds_per_photo": res["cli_wall_s"] / n,
        "rss_first_half_max_mb": max(rss[:half], default=0.0),
        "rss_second_half_max_mb": max(rss[half:], default=0.0),
    }


def run_batch_eta(
    n: int, steps: int | None, models_dir: str, threads: int, folder: Path, quick: bool
) -> dict[str, Any]:
    """Protect ``n`` phone-size photos in one batch; ETA error after photos 1 to 50."""
    import torch

    torch.set_num_threads(threads)
    # The process-wide allocator setting the cloak command makes at its entry point.
    from cloak.device import keep_freed_memory

    keep_freed_memory()
    from cloak.config import preset
    from cloak.engine import run_to_end
    from cloak.eta import EtaEstimator, pixels_of
    from cloak.jobs import PhotoJob, run_batch
    from cloak.models import load_encoder

    sources = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
    # Mixed phone sizes and orientations, as a camera roll has.
    shapes = [(2304, 1728), (1728, 2304), (2048, 1536), (2560, 1920), (1920, 1080)]
    if quick:
        shapes = [(320, 240), (240, 320), (400, 300)]
    src_dir, out_dir = folder / "batch_in", folder / "batch_out"
    paths = [
        make_photo(shapes[i % len(shapes)], src_dir / f"p{i:03d}.jpg", i, sources[i % 4])
        for i in range(n)
    ]
    cfg = preset("standard").replace(encoders=("taef2",), device="cpu")
    if steps is not None:
        cfg = cfg.replace(steps=steps)
    if quick:
        cfg = cfg.replace(work_size=96)
    encoder = load_encoder("taef2", models_dir=models_dir, offline=True)
    jobs = [PhotoJob(p, out_dir / p.name) for p in paths]
    pixels = pixels_of(paths)
    eta = EtaEstimator()
    predictions: dict[int, float] = {}
    done_at: list[float] = []
    seconds: list[float] = []
    start = time.perf_counter()

    def observe(ev: Any) -> None:
        if ev.result is None:
            return
        now = time.perf_counter() - start
        eta.observe(pixels[ev.index], ev.result.seconds)
        seconds.append(ev.result.seconds)
        done_at.append(now)
        k = ev.index + 1
        left = eta.remaining(pixels[k:])
        if left is not None:
            predictions[k] = now + left

    run_to_end(run_batch(jobs, cfg, [encoder]), observe)
    total = time.perf_counter() - start
    checks = [k for k in (1, 2, 3, 5, 10, 20, 50) if k < n]
    errors = []
    for k in checks:
        actual_left = total - done_at[k - 1]
        predicted_left = predictions[k] - done_at[k - 1]
        errors.append(
            {
                "after_photo": k,
                "predicted_finish_s": predictions[k],
                "actual_finish_s": total,
                "remaining_error": (predicted_left - actual_left) / max(actual_left, 1e-9),
                "finish_error": (predictions[k] - total) / total,
            }
        )
    return {
        "photos": n,
        "steps": cfg.steps,
        "total_s": total,
        "mean_photo_s": total / n,
        "megapixels": [round(p / 1e6, 2) for p in pixels],
        "photo_seconds": [round(x, 2) for x in seconds],
        "eta": errors,
    }


def _ratios(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for size, path in dict.fromkeys((c["size"], c["path"]) for c in cases):
        same = [c for c in cases if c["size"] == size and c["path"] == path]
        ref = next((c for c in same if c["method"] == "reference"), None)
        if ref is None:
            continue
        for c in same:
            if c["method"] == "reference":
                continue
            ref_dmg = ref["damage_db"]["1080/q80"]
            rows.append(
                {
                    "size": size,
                    "path": path,
                    "preset": c["method"],
                    "time_ratio": c["photo_s"] / ref["photo_s"],
                    "damage_ratio_1080q80": (
                        c["damage_db"]["1080/q80"] / ref_dmg if ref_dmg > 0 else float("inf")
                    ),
                }
            )
    return rows


def format_table(cases: list[dict[str, Any]]) -> str:
    """Markdown table of the in-process cases, phase by phase."""
    head = (
        "| path | size | method | steps | load s | attack s | lift s | save s | photo s "
        "| process s | peak RSS MB | PSNR | damage direct | 1080/q80 | 720/q70 |"
    )
    lines = [head, "|" + "---|" * 15]
    for c in cases:
        d = c["damage_db"]
        lines.append(
            f"| {c['path']} | {c['size']} | {c['method']} | {c['steps']} | {c['load_s']:.2f} "
            f"| {c['attack_s']:.1f} | {c['lift_s']:.2f} | {c['save_s']:.2f} | {c['photo_s']:.1f} "
            f"| {c['process_s']:.1f} | {c['peak_rss_mb']:.0f} | {c['psnr']:.2f} "
            f"| {d['direct']:.2f} | {d['1080/q80']:.2f} | {d['720/q70']:.2f} |"
        )
    return "\n".join(lines)


def format_units(cases: list[dict[str, Any]], unit_s: float | None) -> str:
    """The summary per path: seconds, units and peak RSS, in-process and as a ``cloak`` process.

    *photo s* is load + attack + lift + save inside ``protect_file``'s steps; *cloak s* is the
    whole ``cloak protect`` process (start-up, weights, the photo, the save) timed from outside;
    its peak RSS comes from the kernel (``wait4``).
    """
    unit = f"{unit_s:.2f} s" if unit_s else "not measured"
    lines = [
        f"unit (fp32 TAEF2 encoder + decoder forward + backward at 640x480): {unit}",
        "| path | case | MP | method | steps | photo s | photo units | in-process peak MB "
        "| cloak s | cloak units | cloak - photo s | cloak peak MB |",
        "|" + "---|" * 12,
    ]
    for c in cases:
        if c["method"] == "reference":
            continue
        units = f"{c['photo_s'] / unit_s:.2f}" if unit_s else "-"
        cli_s = c.get("cli_wall_s")
        cli = (
            f"{cli_s:.1f} | {cli_s / unit_s:.2f} | {cli_s - c['photo_s']:+.1f} "
            f"| {c['cli_peak_rss_mb']:.0f}"
            if cli_s is not None and unit_s
            else "- | - | - | -"
        )
        lines.append(
            f"| {c['path']} | {c['size']} | {c['megapixels']:.1f} | {c['method']} | {c['steps']} "
            f"| {c['photo_s']:.1f} | {units} | {c['peak_rss_mb']:.0f} | {cli} |"
        )
    return "\n".join(lines)


def format_cli_batches(batches: list[dict[str, Any]], unit_s: float | None) -> str:
    """One row per ``cloak protect`` batch process."""
    lines = [
        "| path | memory mode | photos | mean MP | steps | cloak s | s / photo | units / photo "
        "| peak RSS MB | RSS max, 1st half MB | RSS max, 2nd half MB |",
        "|" + "---|" * 11,
    ]
    for b in batches:
        units = f"{b['seconds_per_photo'] / unit_s:.2f}" if unit_s else "-"
        steps = b["steps"] if b["steps"] is not None else "preset"
        lines.append(
            f"| {b['path']} | {b['memory']} | {b['photos']} | {b['megapixels_mean']:.1f} "
            f"| {steps} "
            f"| {b['cli_wall_s']:.1f} | {b['seconds_per_photo']:.2f} | {units} "
            f"| {b['cli_peak_rss_mb']:.0f} | {b['rss_first_half_max_mb']:.0f} "
            f"| {b['rss_second_half_max_mb']:.0f} |"
        )
    return "\n".join(lines)


def format_ratios(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| path | size | preset | our s / reference s | our damage / reference damage (1080/q80) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['path']} | {r['size']} | {r['preset']} | {r['time_ratio']:.2f} "
            f"| {r['damage_ratio_1080q80']:.2f} |"
        )
    return "\n".join(lines)


def format_eta(batch: dict[str, Any]) -> str:
    lines = [
        f"batch: {batch['photos']} photos, {batch['steps']} steps, "
        f"{batch['total_s']:.1f} s ({batch['mean_photo_s']:.1f} s/photo)",
        "| after photo | predicted finish s | actual finish s | error of remaining time "
        "| error of finish time |",
        "|---|---|---|---|---|",
    ]
    for e in batch["eta"]:
        lines.append(
            f"| {e['after_photo']} | {e['predicted_finish_s']:.1f} | {e['actual_finish_s']:.1f} "
            f"| {e['remaining_error']:+.1%} | {e['finish_error']:+.1%} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__)
    p.add_argument("--presets", default="standard")
    p.add_argument(
        "--sizes",
        default="phone,12.6",
        help="cases: phone and 12.6 (real portraits), 1, 12, 14 and/or 50 (generated MP)",
    )
    p.add_argument(
        "--precisions",
        default=None,
        help="precision settings to run, e.g. auto,fp32 (default: auto, plus fp32 where auto "
        "runs bf16)",
    )
    p.add_argument("--ref-steps", type=int, default=200, help="reference PGD steps (at 512 px)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference attack")
    p.add_argument(
        "--ref-sizes",
        default=None,
        help="sizes at which the reference also runs (default: every size)",
    )
    p.add_argument("--no-cli", action="store_true", help="skip timing the cloak process")
    p.add_argument("--no-unit", action="store_true", help="skip measuring the unit")
    p.add_argument("--unit-repeats", type=int, default=2, help="timed runs of the unit")
    p.add_argument(
        "--cli-batch", type=int, default=0, help="also run one cloak process over N portraits"
    )
    p.add_argument(
        "--cli-batch-steps", type=int, default=None, help="attack steps in the CLI batch"
    )
    p.add_argument(
        "--cli-batch-memory",
        default="default",
        help="memory modes of the CLI batch, one process each, side by side: default, low "
        "(cloak protect --low-memory) or default,low",
    )
    p.add_argument("--batch", type=int, default=0, help="also run an N-photo batch for the ETA")
    p.add_argument(
        "--batch-steps",
        type=int,
        default=None,
        help="attack steps in the batch (default: the preset's)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--steps", type=int, default=None, help="override the presets' steps (memory-only runs)"
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and steps (smoke test)")
    p.add_argument("--json", type=Path, default=None, help="write all results here")
    p.add_argument(
        "--models-dir",
        default=os.environ.get("CLOAK_MODELS_DIR", str(REPO.parent / "shared" / "weights")),
    )
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return p


def _precisions(text: str | None) -> list[str]:
    if text is not None:
        return [s.strip() for s in text.split(",") if s.strip()]
    # On a CPU with fast bf16 the fp32 path (what most laptops run) is measured too.
    return ["auto", "fp32"] if path_of("auto") == "bf16" else ["auto"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker is not None:
        spec = json.loads(args.worker)
        out = measure_unit(spec) if spec.get("kind") == "unit" else run_case(spec)
        print(json.dumps(out))
        return 0
    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    table = QUICK_SIZES if args.quick else SIZES
    sizes = list(table) if args.quick else [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in table]
    if unknown:
        print(f"error: unknown size(s) {unknown}: use {', '.join(table)}", file=sys.stderr)
        return 2
    precisions = _precisions(args.precisions)
    bad = [p for p in precisions if p not in ("auto", "fp32", "bf16")]
    if bad:
        print(f"error: unknown precision(s) {bad}: use auto, fp32, bf16", file=sys.stderr)
        return 2
    memory_modes = [m.strip() for m in args.cli_batch_memory.split(",") if m.strip()]
    if not memory_modes or any(m not in ("default", "low") for m in memory_modes):
        print(
            f"error: --cli-batch-memory {args.cli_batch_memory!r}: use default, low or default,low",
            file=sys.stderr,
        )
        return 2
    ref_sizes = None if args.ref_sizes is None else {s.strip() for s in args.ref_sizes.split(",")}
    overrides: dict[str, Any] = {"steps": 2, "work_size": 96} if args.quick else {}
    if args.steps is not None and not args.quick:
        overrides["steps"] = args.steps
    ref_steps = 2 if args.quick else args.ref_steps
    ref_work = 96 if args.quick else 512
    machine = machine_info(args.threads)
    machine["paths"] = {p: path_of(p) for p in precisions}
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {args.threads} threads, "
        f"flags {' '.join(machine['flags']) or '-'}, paths "
        + ", ".join(f"{p} -> {v}" for p, v in machine["paths"].items())
        + f", load average {' '.join(f'{v:.2f}' for v in machine['loadavg'])}",
        flush=True,
    )
    unit: dict[str, Any] | None = None
    if not args.no_unit:
        unit = _spawn(
            {
                "kind": "unit",
                "method": "unit",
                "threads": args.threads,
                "models_dir": args.models_dir,
                "size": [48, 64] if args.quick else list(UNIT_SIZE),
                "repeats": 1 if args.quick else args.unit_repeats,
            }
        )
        print(f"unit: {unit['unit_s']:.2f} s (runs {unit['unit_runs_s']})", flush=True)
    unit_s = unit["unit_s"] if unit is not None else None
    cases: list[dict[str, Any]] = []
    batch: dict[str, Any] | None = None
    cli_batches: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cloak-bench-") as tmp:
        folder = Path(tmp)
        for size in sizes:
            entry = table[size]
            if isinstance(entry, str):
                photo = PORTRAITS / entry
            else:
                photo = make_photo(entry, folder / f"photo_{size}mp.jpg")
            with_ref = not args.no_reference and (ref_sizes is None or size in ref_sizes)
            methods = presets + (["reference"] if with_ref else [])
            for precision in precisions:
                for method in methods:
                    spec = {
                        "photo": str(photo),
                        "method": method,
                        "precision": precision,
                        "threads": args.threads,
                        "overrides": overrides,
                        "ref_steps": ref_steps,
                        "ref_work": ref_work,
                        "attacker_side": 128 if args.quick else ATTACKER_LONG_SIDE,
                        "models_dir": args.models_dir,
                        "out_dir": str(folder / "out"),
                    }
                    res = _spawn(spec)
                    res["size"] = size
                    res["precision"] = precision
                    if method != "reference" and not args.no_cli:
                        out_dir = folder / f"cli_{size}_{precision}_{method}"
                        res.update(
                            run_cli(
                                cli_protect_args(
                                    [photo],
                                    out_dir,
                                    method,
                                    precision,
                                    args.models_dir,
                                    overrides,
                                ),
                                args.threads,
                            )
                        )
                    cases.append(res)
                    cli = (
                        f" cloak {res['cli_wall_s']:.1f} s peak {res['cli_peak_rss_mb']:.0f} MB"
                        if "cli_wall_s" in res
                        else ""
                    )
                    print(
                        f"{res['path']} {size:>5} {method:<10} photo {res['photo_s']:7.1f} s "
                        f"(attack {res['attack_s']:.1f}) peak {res['peak_rss_mb']:6.0f} MB{cli} "
                        f"damage {res['damage_db']['direct']:.2f}"
                        f"/{res['damage_db']['1080/q80']:.2f}"
                        f"/{res['damage_db']['720/q70']:.2f} dB",
                        flush=True,
                    )
        if args.cli_batch:
            for precision, memory in itertools.product(precisions, memory_modes):
                b = run_cli_batch(
                    args.cli_batch,
                    args.cli_batch_steps,
                    precision,
                    args.models_dir,
                    args.threads,
                    folder,
                    args.quick,
                    memory,
                )
                cli_batches.append(b)
                print(
                    f"{b['path']} ({memory} memory) cloak batch of {b['photos']}: "
                    f"{b['cli_wall_s']:.1f} s, "
                    f"peak {b['cli_peak_rss_mb']:.0f} MB",
                    flush=True,
                )
        if args.batch:
            batch = run_batch_eta(
                args.batch,
                2 if args.quick and args.batch_steps is None else args.batch_steps,
                args.models_dir,
                args.threads,
                folder,
                args.quick,
            )
    machine["loadavg_end"] = list(os.getloadavg())
    ratios = _ratios(cases)
    print()
    print(
        f"load average at the start {' '.join(f'{v:.2f}' for v in machine['loadavg'])}, "
        f"at the end {' '.join(f'{v:.2f}' for v in machine['loadavg_end'])}"
    )
    if cases:
        print()
        print(format_units(cases, unit_s))
        print()
        print(format_table(cases))
    if ratios:
        print()
        print(format_ratios(ratios))
    if cli_batches:
        print()
        print(format_cli_batches(cli_batches, unit_s))
    if batch is not None:
        print()
        print(format_eta(batch))
    if args.json is not None:
        payload = {
            "machine": machine,
            "threads": args.threads,
            "unit": unit,
            "cases": cases,
            "ratios": ratios,
            "cli_batches": cli_batches,
            "batch": batch,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
