"""Finding, downloading and checking weight files.

Lookup order for each file ``<local_dir>/<filename>`` of an encoder:

1. the models folder given explicitly (the CLI's ``--models-dir``), else ``$CLOAK_MODELS_DIR``;
2. the user cache, ``platformdirs.user_cache_dir("cloak")/models``;
3. a download from the public repository with ``huggingface_hub`` into the user cache (never
   when offline: ``offline=True`` or ``HF_HUB_OFFLINE=1``).

A download lands in a temporary folder next to its destination, is checked against the pinned
sha256 (or, for files with no pinned digest, has its digest recorded in a ``.sha256`` sidecar:
trust on first use) and only then is renamed into place, so a failed or wrong download never
leaves a file behind. Every load re-checks the digest; the digest of an unchanged file (same
path, mtime and size) is computed once per process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import EncoderSpec, WeightFile, WeightsError

SIDECAR_SUFFIX = ".sha256"
_digest_cache: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class VerifyRow:
    """One line of ``cloak models verify``.

    Attributes:
        name: Registry name of the encoder.
        file: File name inside the repository.
        path: Where the file was found, or None.
        status: ``"ok"``, ``"missing"``, ``"corrupt"`` or ``"unverified"`` (no digest known).
        detail: Human-readable explanation.
    """

    name: str
    file: str
    path: Path | None
    status: str
    detail: str


def user_models_dir() -> Path:
    """The per-user cache folder for downloaded weights."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("cloak")) / "models"


def search_dirs(models_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for weights, in order (explicit folder or ``$CLOAK_MODELS_DIR``, cache)."""
    dirs: list[Path] = []
    explicit = models_dir if models_dir is not None else os.environ.get("CLOAK_MODELS_DIR")
    if explicit:
        dirs.append(Path(explicit).expanduser())
    dirs.append(user_models_dir())
    return dirs


def is_offline(offline: bool | None = None) -> bool:
    """``offline`` when given, else whether ``HF_HUB_OFFLINE`` is set to a true value."""
    if offline is not None:
        return offline
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def sha256_of(path: Path) -> str:
    """Hex sha256 of ``path``, cached per (path, mtime, size) for this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    digest = _digest_cache.get(key)
    if digest is None:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _digest_cache[key] = digest
    return digest


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def expected_digest(path: Path, wf: WeightFile) -> str | None:
    """The pinned digest, else the one recorded in the file's sidecar, else None."""
    if wf.sha256:
        return wf.sha256.lower()
    side = sidecar(path)
    if side.is_file():
        text = side.read_text(encoding="ascii", errors="replace").split()
        return text[0].lower() if text else None
    return None


def check_file(path: Path, wf: WeightFile) -> tuple[str, str]:
    """``(status, detail)`` for an existing file: ``ok``, ``corrupt`` or ``unverified``."""
    size = path.stat().st_size
    if wf.size is not None and size != wf.size:
        return "corrupt", f"size {size} bytes, expected {wf.size} (truncated or wrong file)"
    want = expected_digest(path, wf)
    if want is None:
        return "unverified", "no known sha256 and no .sha256 sidecar"
    got = sha256_of(path)
    if got != want:
        return "corrupt", f"sha256 {got}, expected {want}"
    return "ok", "sha256 matches"


def ensure_valid(path: Path, wf: WeightFile) -> None:
    """Raise :class:`WeightsError` unless ``path`` passes :func:`check_file`."""
    status, detail = check_file(path, wf)
    if status == "corrupt":
        raise WeightsError(
            f"{path} is corrupt or tampered with ({detail}). Delete it and download it again."
        )


def locate(spec: EncoderSpec, wf: WeightFile, models_dir: str | Path | None = None) -> Path | None:
    """The first existing copy of ``wf`` in :func:`search_dirs`, or None."""
    for d in search_dirs(models_dir):
        p = d / spec.local_dir / wf.filename
        if p.is_file():
            return p
    return None


def missing_message(spec: EncoderSpec, wf: WeightFile, models_dir: str | Path | None, why: str):
    places = ", ".join(str(d / spec.local_dir / wf.filename) for d in search_dirs(models_dir))
    return (
        f"Weights for {spec.name!r} not found: {wf.filename} ({why}). Looked in: {places}. "
        f"Fetch them with: cloak models download {spec.name}"
    )


def _quiet_tqdm() -> Any:
    from tqdm.auto import tqdm

    class Quiet(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return Quiet


def download_file(
    spec: EncoderSpec, wf: WeightFile, dest_root: Path | None = None, progress: bool = True
) -> Path:
    """Download ``wf`` into ``dest_root/<local_dir>/`` (default: the user cache), checked.

    Raises:
        WeightsError: The download failed, or its sha256 does not match the pinned digest (the
            download is deleted first).
    """
    from huggingface_hub import hf_hub_download

    root = dest_root if dest_root is not None else user_models_dir()
    final = root / spec.local_dir / wf.filename
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=final.parent))
    try:
        try:
            got = Path(
                hf_hub_download(
                    spec.repo_id,
                    wf.filename,
                    local_dir=tmp,
                    endpoint=os.environ.get("HF_ENDPOINT") or None,
                    tqdm_class=None if progress else _quiet_tqdm(),
                )
            )
        except Exception as exc:  # noqa: BLE001 - network and hub errors alike
            raise WeightsError(
                f"Downloading {wf.filename} for {spec.name!r} from {spec.repo_id} failed: {exc}"
            ) from exc
        digest = sha256_of(got)
        if wf.sha256 and digest != wf.sha256.lower():
            raise WeightsError(
                f"Downloaded {wf.filename} for {spec.name!r} has sha256 {digest}, expected "
                f"{wf.sha256}; it was deleted. Try again later or report it."
            )
        if wf.size is not None and got.stat().st_size != wf.size:
            raise WeightsError(
                f"Downloaded {wf.filename} for {spec.name!r} has the wrong size; it was deleted."
            )
        os.replace(got, final)
        if not wf.sha256:
            sidecar(final).write_text(f"{digest}  {final.name}\n", encoding="ascii")
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(
    spec: EncoderSpec,
    wf: WeightFile,
    models_dir: str | Path | None = None,
    offline: bool | None = None,
    progress: bool = True,
) -> Path:
    """A verified local path for ``wf``: found locally, else downloaded unless offline.

    Raises:
        WeightsError: Missing (offline or download failed) or corrupt; the message says which
            file, every place looked in, and how to fetch it.
    """
    path = locate(spec, wf, models_dir)
    if path is None:
        if is_offline(offline):
            raise WeightsError(missing_message(spec, wf, models_dir, "offline: no download"))
        try:
            path = download_file(spec, wf, progress=progress)
        except WeightsError as exc:
            raise WeightsError(f"{missing_message(spec, wf, models_dir, str(exc))}") from exc
    ensure_valid(path, wf)
    return path
