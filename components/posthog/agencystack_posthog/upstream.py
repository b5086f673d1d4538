"""Upstream files the stack mounts (ClickHouse configs, idl, user scripts, Postgres init scripts, the Kafka topic
list, Temporal's dynamic config, livestream's config, the GeoIP database): fetched at a pinned ref, verified by
sha256, cached per host.

* The checksums of a ref live in ``locks/<ref>.sha256`` (``sha256sum`` format) shipped with this package; write
  one from a checkout of PostHog/posthog at that ref with ``python -m agencystack_posthog.upstream lock REF DIR``.
* ``POSTHOG_UPSTREAM_DIR`` (offline hosts): the files are copied from that directory (a checkout at the ref, plus
  ``share/GeoLite2-City.mmdb``) and checked against the lock when one exists; otherwise they are taken as given.
* Otherwise every file of the lock is downloaded from ``POSTHOG_UPSTREAM_URL`` (raw GitHub at the ref), with
  retries (tenacity), and checked. Without a lock for the ref, nothing is downloaded: an unverified fetch is what
  the old scripts did.

The cache, ``<root>/cache/posthog-upstream/<ref>/`` with its own SHA256SUMS, is verified on every use and built
in a temporary directory renamed into place, so a failed or partial fetch never leaves a half cache behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from agencystack import UsageError

#: what the stack mounts, relative to a PostHog checkout: files, and directories (ending in "/")
REQUIRED = (
    "docker/clickhouse/config.xml",
    "docker/clickhouse/config.d/default.xml",
    "docker/clickhouse/users.xml",
    "docker/clickhouse/user_defined_function.xml",
    "docker/clickhouse/docker-entrypoint-initdb.d/",
    "posthog/idl/",
    "posthog/user_scripts/",
    "docker/postgres-init-scripts/",
    "docker/kafka/topics.txt",
    "docker/temporal/dynamicconfig/",
    "docker/livestream/configs-hobby.yml",
)
#: not in the repository (upstream's installer downloads it): copied when the upstream directory has it
OPTIONAL = ("share/GeoLite2-City.mmdb",)
SUMS = "SHA256SUMS"
TIMEOUT = 30


def cache_dir(root: Path, ref: str) -> Path:
    return root / "cache" / "posthog-upstream" / ref


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


def pinned(ref: str) -> dict[str, str] | None:
    """The checksums shipped for ``ref``, or None."""
    lock = resources.files("agencystack_posthog") / "locks" / f"{ref}.sha256"
    return parse_sums(lock.read_text()) if lock.is_file() else None


def required_paths(tree: Path) -> list[str]:
    """Every file under ``tree`` that :data:`REQUIRED` and :data:`OPTIONAL` name (directories expanded)."""
    found: list[str] = []
    for entry in REQUIRED:
        source = tree / entry
        if entry.endswith("/"):
            if not source.is_dir():
                raise UsageError(f"PostHog upstream files: {source} is missing (POSTHOG_UPSTREAM_DIR must be a "
                                 "checkout of PostHog/posthog at POSTHOG_UPSTREAM_REF)")
            found += sorted(p.relative_to(tree).as_posix() for p in source.rglob("*") if p.is_file())
        elif source.is_file():
            found.append(entry)
        else:
            raise UsageError(f"PostHog upstream files: {source} is missing (POSTHOG_UPSTREAM_DIR must be a "
                             "checkout of PostHog/posthog at POSTHOG_UPSTREAM_REF)")
    found += [entry for entry in OPTIONAL if (tree / entry).is_file()]
    return found


def _mismatches(tree: Path, sums: dict[str, str]) -> list[str]:
    """The paths whose content does not match ``sums`` (missing ones included)."""
    return [path for path, digest in sorted(sums.items())
            if not (tree / path).is_file() or sha256(tree / path) != digest]


def _download(url: str, target: Path) -> None:
    import urllib.request

    from tenacity import retry, stop_after_attempt, wait_exponential

    @retry(stop=stop_after_attempt(4), wait=wait_exponential(multiplier=1, max=10), reraise=True)
    def fetch() -> None:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fetch()
    except OSError as exc:
        raise UsageError(f"cannot fetch PostHog upstream file {url}: {exc} (offline? set POSTHOG_UPSTREAM_DIR)") \
            from None


def materialize(settings, root: Path, progress=lambda service, message: None) -> Path:
    """The verified cache directory of ``settings.upstream_ref``, filled first if needed."""
    ref = settings.upstream_ref
    target = cache_dir(root, ref)
    if (target / SUMS).is_file() and not _mismatches(target, parse_sums((target / SUMS).read_text())):
        return target
    expected = pinned(ref)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{ref}."))
    try:
        if settings.upstream_dir:
            source = Path(settings.upstream_dir)
            progress("upstream", f"copying PostHog files from {source}")
            for path in required_paths(source):
                (staging / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / path, staging / path)
        elif expected is None:
            raise UsageError(f"no checksums are pinned for PostHog upstream ref {ref}: set POSTHOG_UPSTREAM_DIR to a "
                             f"checkout at that ref, or pin them with 'python -m agencystack_posthog.upstream lock'")
        else:
            progress("upstream", f"fetching {len(expected)} PostHog files at {ref[:12]}")
            for path in sorted(expected):
                _download(settings.upstream_url.format(ref=ref, path=path), staging / path)
        if expected is not None:
            bad = _mismatches(staging, {p: d for p, d in expected.items() if p not in OPTIONAL or (staging / p).exists()})
            if bad:
                raise UsageError(f"PostHog upstream files do not match the checksums pinned for {ref}: "
                                 f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
        for entry in REQUIRED:  # directories the stack mounts exist even when upstream has them empty
            if entry.endswith("/"):
                (staging / entry).mkdir(parents=True, exist_ok=True)
        (staging / "share").mkdir(exist_ok=True)
        files = [p for p in staging.rglob("*") if p.is_file()]
        (staging / SUMS).write_text(format_sums({p.relative_to(staging).as_posix(): sha256(p) for p in files}))
        for path in staging.rglob("*"):  # containers read these as their own (non-root) users
            os.chmod(path, 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        os.chmod(staging, 0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str]) -> int:
    """``lock REF DIR``: write locks/REF.sha256 from a checkout of PostHog/posthog at REF (run where it exists)."""
    if len(argv) != 3 or argv[0] != "lock":
        print("usage: python -m agencystack_posthog.upstream lock REF CHECKOUT_DIR", file=sys.stderr)
        return 2
    ref, tree = argv[1], Path(argv[2])
    sums = {path: sha256(tree / path) for path in required_paths(tree) if path not in OPTIONAL}
    out = Path(__file__).with_name("locks") / f"{ref}.sha256"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(format_sums(sums))
    print(f"{out}: {len(sums)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
