"""Finding, downloading and checking weight files.

Lookup order for each file ``<local_dir>/<filename>`` of an encoder:

1. the models folder given explicitly (the CLI's ``--models-dir``), else ``$CLOAK_MODELS_DIR``;
2. the user cache, ``platformdirs.user_cache_dir("cloak")/models``;
3. a download into the user cache (never when offline: ``offline=True`` or ``HF_HUB_OFFLINE=1``):
   files published on GitHub (the TAESD family) come with ``pooch`` from
   ``raw.githubusercontent.com/<owner>/<repo>/<commit>/<file>`` at the registry's fixed commit
   (``$CLOAK_WEIGHTS_URL`` replaces ``https://raw.githubusercontent.com``, for a mirror or a
   test server); files on Hugging Face come with ``huggingface_hub`` (``$HF_ENDPOINT``).

A download lands in a temporary folder next to its destination and is checked there against
every pinned fact about the file (size, sha256, git blob id) before anything loads it; a wrong
or interrupted download is deleted and never reaches its destination. Files pinned only by git
blob id get the sha256 seen then recorded in a ``.sha256`` sidecar; files with no pinned digest
at all (the opt-in full VAEs) have theirs recorded the same way (trust on first use). Every
load re-checks the digests; the digest of an unchanged file (same path, mtime and size) is
computed once per process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import EncoderSpec, WeightFile, WeightsError

SIDECAR_SUFFIX = ".sha256"
#: Where files published on GitHub are fetched from, unless ``$CLOAK_WEIGHTS_URL`` says otherwise.
GITHUB_RAW_URL = "https://raw.githubusercontent.com"
#: Extra attempts after a failed (interrupted, timed-out) GitHub download.
DOWNLOAD_RETRIES = 2
_digest_cache: dict[tuple[str, str, int, int], str] = {}


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


def _digest(path: Path, kind: str) -> str:
    st = path.stat()
    key = (kind, str(path.resolve()), st.st_mtime_ns, st.st_size)
    digest = _digest_cache.get(key)
    if digest is None:
        if kind == "sha256":
            h = hashlib.sha256()
        else:
            # A git blob id hashes a header with the size, then the bytes.
            h = hashlib.sha1(usedforsecurity=False)
            h.update(b"blob " + str(st.st_size).encode() + b"\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _digest_cache[key] = digest
    return digest


def sha256_of(path: Path) -> str:
    """Hex sha256 of ``path``, cached per (path, mtime, size) for this process."""
    return _digest(path, "sha256")


def git_blob_of(path: Path) -> str:
    """Git blob id of ``path`` (``sha1(b"blob <size>\\0" + data)``), cached like the sha256."""
    return _digest(path, "git_blob")


def pinned_by(wf: WeightFile) -> str:
    """What pins ``wf``'s bytes: ``"sha256"``, ``"git blob"`` or ``"none"``."""
    if wf.sha256:
        return "sha256"
    if wf.git_blob:
        return "git blob"
    return "none"


def weights_base_url() -> str:
    """Base URL for files published on GitHub: ``$CLOAK_WEIGHTS_URL`` or the real one."""
    return (os.environ.get("CLOAK_WEIGHTS_URL") or GITHUB_RAW_URL).rstrip("/")


def source_url(spec: EncoderSpec, wf: WeightFile) -> str:
    """Where ``wf`` is downloaded from (for messages and GitHub downloads)."""
    if spec.source == "github":
        return f"{weights_base_url()}/{spec.repo_id}/{spec.revision or 'main'}/{wf.filename}"
    return f"https://huggingface.co/{spec.repo_id} ({wf.filename})"


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
    """``(status, detail)`` for an existing file: ``ok``, ``corrupt`` or ``unverified``.

    Every pinned fact is checked: size, sha256 (pinned or recorded in the sidecar) and git blob
    id. A file is ``unverified`` only when nothing pins it and no sidecar records its sha256.
    """
    size = path.stat().st_size
    if wf.size is not None and size != wf.size:
        return "corrupt", f"size {size} bytes, expected {wf.size} (truncated or wrong file)"
    passed: list[str] = []
    if wf.git_blob:
        got = git_blob_of(path)
        if got != wf.git_blob.lower():
            return "corrupt", f"git blob id {got}, expected {wf.git_blob}"
        passed.append("git blob id")
    want = expected_digest(path, wf)
    if want is not None:
        got = sha256_of(path)
        if got != want:
            return "corrupt", f"sha256 {got}, expected {want}"
        passed.append("sha256")
    if not passed:
        return "unverified", "no known sha256 and no .sha256 sidecar"
    return "ok", " and ".join(passed) + (" match" if len(passed) > 1 else " matches")


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


def missing_message(
    spec: EncoderSpec, wf: WeightFile, models_dir: str | Path | None, why: str
) -> str:
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


def _download_github(spec: EncoderSpec, wf: WeightFile, folder: Path, progress: bool) -> Path:
    """Fetch ``wf`` with pooch into ``folder`` (retrying interrupted transfers); its path."""
    import pooch

    # pooch would log the hidden temporary folder; say where the file comes from instead.
    pooch.get_logger().setLevel("WARNING")
    if progress:
        print(
            f"Downloading {wf.filename} for {spec.name} from {source_url(spec, wf)}",
            file=sys.stderr,
        )
    fetcher = pooch.create(
        path=folder,
        base_url=f"{weights_base_url()}/{spec.repo_id}/{spec.revision or 'main'}/",
        # The digests are checked below, against every pinned fact, with our own messages.
        registry={wf.filename: None},
        retry_if_failed=DOWNLOAD_RETRIES,
    )
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=60)
    return Path(fetcher.fetch(wf.filename, downloader=downloader))


def _download_hf(spec: EncoderSpec, wf: WeightFile, folder: Path, progress: bool) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(
        hf_hub_download(
            spec.repo_id,
            wf.filename,
            revision=spec.revision,
            local_dir=folder,
            endpoint=os.environ.get("HF_ENDPOINT") or None,
            tqdm_class=None if progress else _quiet_tqdm(),
        )
    )


def download_file(
    spec: EncoderSpec, wf: WeightFile, dest_root: Path | None = None, progress: bool = True
) -> Path:
    """Download ``wf`` into ``dest_root/<local_dir>/`` (default: the user cache), checked.

    The file is checked in a temporary folder against its pinned size, sha256 and git blob id
    before it is moved into place; its sha256 is recorded in a sidecar when none is pinned.

    Raises:
        WeightsError: The download failed, or the file is not the pinned one (the download is
            deleted first; nothing is left at the destination).
    """
    root = dest_root if dest_root is not None else user_models_dir()
    final = root / spec.local_dir / wf.filename
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=final.parent))
    try:
        try:
            fetch_one = _download_github if spec.source == "github" else _download_hf
            got = fetch_one(spec, wf, tmp, progress)
        except Exception as exc:  # noqa: BLE001 - network, HTTP and hub errors alike
            raise WeightsError(
                f"Downloading {wf.filename} for {spec.name!r} from {source_url(spec, wf)} "
                f"failed: {exc}"
            ) from exc
        status, detail = check_file(got, wf)
        if status == "corrupt":
            raise WeightsError(
                f"Downloaded {wf.filename} for {spec.name!r} from {source_url(spec, wf)} is not "
                f"the pinned file ({detail}); it was deleted. Try again later or report it."
            )
        if not wf.sha256:
            side = sidecar(got)
            side.write_text(f"{sha256_of(got)}  {final.name}\n", encoding="ascii")
            os.replace(side, sidecar(final))
        os.replace(got, final)
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
