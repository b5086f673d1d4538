"""Upstream files the stack mounts (ClickHouse configs, idl, user scripts, the Kafka topic list, Temporal's dynamic
config, livestream's config), at the pinned commit, verified, cached per host. (No Postgres init scripts: upstream's
hobby deployment runs none, see the deviation table in deviations.py.)

Where they come from, first match wins:

* ``POSTHOG_UPSTREAM_DIR`` (offline hosts): copied from that directory. When it is a git checkout, its HEAD must be
  ``POSTHOG_UPSTREAM_REF`` and the files must have no local changes; a plain directory is taken as given (and
  said so).
* Otherwise git fetches exactly that commit from ``POSTHOG_UPSTREAM_GIT`` (shallow, without blobs, then a sparse
  checkout of only these paths: a few hundred kilobytes, not PostHog's whole history). The ref is a full commit
  id, so git's own object hashes verify every byte against it: the same trust as ``git clone``, without shipping
  checksums that would have to be kept in step with every pin.

Each file keeps upstream's executable bit: from git's tree entry (``100755`` / ``100644``) when the source is git, else
from the source file's own mode. ClickHouse runs the user-defined functions under ``user_scripts`` as programs, so a
copy that lost the bit breaks funnel queries. The files are world-readable either way (the containers read them as
their own users).

The cache, ``<root>/cache/posthog-upstream/<ref>/`` with its own ``SHA256SUMS`` and ``EXECUTABLE`` (the files with the
bit), is re-verified on every use (contents and modes) and built in a temporary directory renamed into place, so a
failed or partial fetch never leaves a half cache behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from agencystack import ComponentError, UsageError

if TYPE_CHECKING:
    from agencystack import StateRoot

#: what the stack mounts, relative to a PostHog checkout: files, and directories (ending in "/")
REQUIRED = (
    "docker/clickhouse/config.xml",
    "docker/clickhouse/config.d/default.xml",
    "docker/clickhouse/users.xml",
    "docker/clickhouse/user_defined_function.xml",
    "docker/clickhouse/docker-entrypoint-initdb.d/",
    "posthog/idl/",
    "posthog/user_scripts/",
    "docker/kafka/topics.txt",
    "docker/temporal/dynamicconfig/",
    "docker/livestream/configs-hobby.yml",
)
SUMS = "SHA256SUMS"
EXECUTABLE = "EXECUTABLE"
FETCH_TIMEOUT = 600
FETCH_ATTEMPTS = 3


def cache_dir(state_root: StateRoot, ref: str) -> Path:
    return state_root.cache("posthog-upstream") / ref


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_sums(text: str) -> dict[str, str]:
    sums = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            digest, _, path = line.strip().partition("  ")
            sums[path] = digest
    return sums


def format_sums(sums: dict[str, str]) -> str:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(sums.items()))


def required_paths(tree: Path, hint: str = "") -> list[str]:
    """Every file under ``tree`` that :data:`REQUIRED` names (directories expanded)."""
    found: list[str] = []
    for entry in REQUIRED:
        source = tree / entry
        if entry.endswith("/") and source.is_dir():
            found += sorted(p.relative_to(tree).as_posix() for p in source.rglob("*") if p.is_file())
        elif not entry.endswith("/") and source.is_file():
            found.append(entry)
        else:
            raise UsageError(f"PostHog upstream files: {source} is missing{hint}")
    return found


def _intact(tree: Path) -> bool:
    """Whether ``tree`` holds a cache whose every file still matches its SHA256SUMS and its executable bit."""
    if not (tree / SUMS).is_file() or not (tree / EXECUTABLE).is_file():
        return False  # a cache written before modes were kept is rebuilt
    sums = parse_sums((tree / SUMS).read_text())
    executable = set((tree / EXECUTABLE).read_text().split())
    return all((tree / path).is_file() and sha256(tree / path) == digest
               and _is_executable(tree / path) == (path in executable) for path, digest in sums.items())


def _is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def git_modes(work: Path, paths: list[str]) -> dict[str, bool]:
    """Whether each of ``paths`` is executable in the commit checked out in ``work``: git's tree entry mode."""
    listing = git("ls-tree", "-r", "-z", "--full-tree", "HEAD", cwd=work)
    modes = {}
    for entry in listing.split("\0"):
        if entry:
            meta, _, path = entry.partition("\t")
            modes[path] = meta.split()[0] == "100755"
    return {path: modes.get(path, False) for path in paths}


def git(*args: str, cwd: Path, timeout: float = 60) -> str:
    """Run git in ``cwd``; its stdout, or a UsageError with git's last line of complaint."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise UsageError("git is needed to fetch PostHog's upstream files: install git, or set POSTHOG_UPSTREAM_DIR "
                         "to a copy of them") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"git {args[0]} took longer than {timeout:.0f} s") from None
    if done.returncode:
        complaint = [line for line in done.stderr.splitlines() if line.strip()] or [f"exit {done.returncode}"]
        raise UsageError(f"git {args[0]}: {complaint[-1].strip()}")
    return done.stdout


def _copy(source: Path, paths: list[str], staging: Path, executable: dict[str, bool] | None = None) -> None:
    """Copy ``paths``; each is 0755 if ``executable`` says so (default: the source file's own bit), else 0644."""
    for path in paths:
        (staging / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / path, staging / path)
        runs = executable[path] if executable is not None else _is_executable(source / path)
        os.chmod(staging / path, 0o755 if runs else 0o644)


def _from_directory(source: Path, ref: str, staging: Path, progress) -> None:
    hint = " (POSTHOG_UPSTREAM_DIR must be a checkout of PostHog/posthog at POSTHOG_UPSTREAM_REF)"
    if not source.is_dir():
        raise UsageError(f"POSTHOG_UPSTREAM_DIR {source} is not a directory")
    if (source / ".git").exists():
        head = git("rev-parse", "HEAD", cwd=source).strip()
        if head != ref:
            raise UsageError(f"POSTHOG_UPSTREAM_DIR {source} is checked out at {head[:12]}, not at "
                             f"POSTHOG_UPSTREAM_REF {ref[:12]}")
        changed = git("status", "--porcelain", "--", *REQUIRED, cwd=source).splitlines()
        if changed:
            raise UsageError(f"POSTHOG_UPSTREAM_DIR {source} has local changes: {changed[0][3:]}"
                             f"{' ...' if len(changed) > 1 else ''}")
        progress("upstream", f"copying PostHog files from {source} (a checkout at {ref[:12]})")
        paths = required_paths(source, hint)
        _copy(source, paths, staging, git_modes(source, paths))
    else:
        progress("upstream", f"copying PostHog files from {source}: not a git checkout, taken as given")
        _copy(source, required_paths(source, hint), staging)


@contextlib.contextmanager
def shallow(url: str, ref: str, parent: Path, *, depth: int, filter: str, what: str, hint: str) -> Iterator[Path]:
    """A scratch repository under ``parent`` holding ``ref`` fetched from ``url`` (``depth`` commits, objects
    limited by git's ``filter``; retried), removed afterwards. A fetch that fails says ``what`` could not be
    fetched, and ``hint``."""
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=parent, prefix=".git-"))
    try:
        git("init", "-q", cwd=work)
        fetch = retry(stop=stop_after_attempt(FETCH_ATTEMPTS), wait=wait_exponential(multiplier=2, max=20),
                      retry=retry_if_exception_type(UsageError), reraise=True)(git)
        try:
            fetch("fetch", "-q", f"--depth={depth}", f"--filter={filter}", "--no-tags", url, ref, cwd=work,
                  timeout=FETCH_TIMEOUT)
        except UsageError as exc:
            raise ComponentError(f"cannot fetch {what} {ref[:12]} from {url}: {exc} ({hint})") from None
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _fetch(url: str, ref: str, staging: Path, progress) -> None:
    progress("upstream", f"fetching PostHog files at {ref[:12]} from {url}")
    with shallow(url, ref, staging.parent, depth=1, filter="blob:none", what="PostHog",
                 hint="offline? set POSTHOG_UPSTREAM_DIR") as work:
        git("sparse-checkout", "set", "--no-cone", *(f"/{entry}" for entry in REQUIRED), cwd=work)
        git("checkout", "-q", "--detach", ref, cwd=work, timeout=FETCH_TIMEOUT)  # fetches the blobs it needs
        head = git("rev-parse", "HEAD", cwd=work).strip()
        if head != ref:  # cannot happen with a full commit id; kept so a short or symbolic ref never slips through
            raise UsageError(f"{url} gave commit {head[:12]} for POSTHOG_UPSTREAM_REF {ref[:12]}")
        paths = required_paths(work, f" at {ref[:12]} in {url}")
        _copy(work, paths, staging, git_modes(work, paths))


def materialize(settings, state_root: StateRoot, progress=lambda service, message: None) -> Path:
    """The verified cache directory of ``settings.upstream_ref``, filled first if needed."""
    ref = settings.upstream_ref
    target = cache_dir(state_root, ref)
    if _intact(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{ref}."))
    try:
        if settings.upstream_dir:
            _from_directory(Path(settings.upstream_dir), ref, staging, progress)
        else:
            _fetch(settings.upstream_git, ref, staging, progress)
        for entry in REQUIRED:  # directories the stack mounts exist even when upstream has them empty
            if entry.endswith("/"):
                (staging / entry).mkdir(parents=True, exist_ok=True)
        files = [p for p in staging.rglob("*") if p.is_file()]
        (staging / SUMS).write_text(format_sums({p.relative_to(staging).as_posix(): sha256(p) for p in files}))
        (staging / EXECUTABLE).write_text("".join(f"{p.relative_to(staging).as_posix()}\n" for p in sorted(files)
                                                  if _is_executable(p)))
        for path in [staging, *staging.rglob("*")]:  # containers read these as their own (non-root) users
            if path.is_dir():
                os.chmod(path, 0o755)
        for name in (SUMS, EXECUTABLE):
            os.chmod(staging / name, 0o644)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
