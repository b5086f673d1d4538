"""The GeoIP database (GeoLite2 City) that feature-flags, cymbal and the Node services read from ``/share``.

Upstream's installer downloads it from PostHog's CDN (brotli-compressed) into ``share/``; it is not part of the
repository, so it cannot be pinned by the upstream commit. Here it is:

* taken from ``POSTHOG_UPSTREAM_DIR/share/GeoLite2-City.mmdb`` when that exists (offline hosts);
* otherwise downloaded from ``POSTHOG_GEOIP_URL`` (retried), decompressed, and accepted only if it opens as a
  MaxMind database of a City type (``maxminddb``): a proxy's error page or a truncated download is refused;
* kept per host in ``<root>/cache/posthog-share/`` and refreshed when older than :data:`MAX_AGE_DAYS`. A failed
  refresh keeps the database already there (with a warning): stale locations beat a PostHog that will not start.
* ``POSTHOG_GEOIP_URL=""`` turns it off (PostHog runs without locations).
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from agencystack import ComponentError, UsageError

if TYPE_CHECKING:
    from agencystack import StateRoot

NAME = "GeoLite2-City.mmdb"
MAX_AGE_DAYS = 30
TIMEOUT = 60
ATTEMPTS = 4


def share_dir(state_root: StateRoot) -> Path:
    """The host's directory mounted as ``/share`` into PostHog's services."""
    return state_root.cache("posthog-share")


def check(path: Path) -> str:
    """The database type of the MaxMind database at ``path``; UsageError if it is not a City database."""
    import maxminddb

    try:
        with maxminddb.open_database(str(path)) as reader:
            kind = reader.metadata().database_type
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise UsageError(f"{path.name} is not a MaxMind database: {exc}") from None
    if "City" not in kind:
        raise UsageError(f"{path.name} is a {kind} database, not a City one")
    return kind


def _download(url: str, target: Path) -> None:
    """``url`` (brotli-compressed, as PostHog's CDN serves it; plain is accepted too) into ``target``."""
    import urllib.request

    import brotli
    from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

    @retry(stop=stop_after_attempt(ATTEMPTS), wait=wait_exponential(multiplier=1, max=10),
           retry=retry_if_exception_type(OSError), reraise=True)
    def fetch() -> None:
        request = urllib.request.Request(url, headers={"User-Agent": "agencystack"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response, open(target, "wb") as out:
            decompressor = brotli.Decompressor()
            decompress = decompressor.process
            block = response.read(1 << 16)
            try:
                out.write(decompress(block))
            except brotli.error:  # served uncompressed (a mirror, a local file server): check() judges it
                decompress = None
                out.write(block)
            while block := response.read(1 << 16):
                out.write(decompress(block) if decompress else block)
            if decompress and not decompressor.is_finished():
                raise brotli.error("the stream ends early")

    try:
        fetch()
    except brotli.error as exc:
        raise UsageError(f"the GeoIP download from {url} is truncated or corrupt: {exc}") from None
    except OSError as exc:
        raise UsageError(f"cannot download the GeoIP database from {url}: {exc}") from None


def _install(source: Path, share: Path, origin: str) -> None:
    """Move a checked database into ``share`` atomically, with a note of where and when it came from."""
    os.chmod(source, 0o644)
    os.replace(source, share / NAME)
    (share / "GeoLite2-City.json").write_text(json.dumps({
        "source": origin, "date": datetime.now(UTC).strftime("%Y-%m-%d")}) + "\n")


def materialize(settings, state_root: StateRoot, progress=lambda service, message: None, warn=None) -> Path:
    """The share directory, with a checked GeoIP database in it unless GeoIP is turned off."""
    share = share_dir(state_root)
    share.mkdir(parents=True, exist_ok=True)
    os.chmod(share, 0o755)
    current = share / NAME
    local = Path(settings.upstream_dir) / "share" / NAME if settings.upstream_dir else None
    with tempfile.TemporaryDirectory(dir=share, prefix=".geoip-") as tmp:
        staged = Path(tmp) / NAME
        if local is not None and local.is_file():
            if current.is_file() and filecmp.cmp(current, local, shallow=False):  # in blocks, not 2 x 60 MB
                return share
            shutil.copyfile(local, staged)
            check(staged)
            _install(staged, share, str(local))
            progress("geoip", f"GeoIP database copied from {local}")
            return share
        if not settings.geoip_url:
            return share
        fresh = current.is_file() and time.time() - current.stat().st_mtime < MAX_AGE_DAYS * 86400
        if fresh:
            return share
        progress("geoip", f"downloading the GeoIP database from {settings.geoip_url}")
        try:
            _download(settings.geoip_url, staged)
            check(staged)
        except UsageError as exc:
            if not current.is_file():
                raise ComponentError(f"{exc} (set POSTHOG_GEOIP_URL to a mirror, put {NAME} in "
                                     "POSTHOG_UPSTREAM_DIR/share, or set POSTHOG_GEOIP_URL= to run without "
                                     "GeoIP)") from None
            if warn:
                warn(f"GeoIP refresh failed, keeping the database from "
                     f"{datetime.fromtimestamp(current.stat().st_mtime, UTC):%Y-%m-%d}: {exc}")
            return share
        _install(staged, share, settings.geoip_url)
    return share
