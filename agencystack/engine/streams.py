"""Streams between the engine and this process, in constant memory: log lines (one service, several merged by
time, or followed live), ``exec`` with streamed stdin/stdout/stderr, and a volume's contents as a tar.
"""

from __future__ import annotations

import heapq
import queue
import re
import socket as pysocket
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any

from agencystack.engine import sdk  # noqa: F401 - first: the docker SDK without its ssh transport
import docker.errors
from docker.types import Mount as DockerMount
from docker.utils import socket as docker_socket

from agencystack.engine import labels
from agencystack.engine.client import EngineRoom, explanation
from agencystack.engine.observe import Observed, image_index, normalize_ref, running_container
from agencystack.errors import ComponentError
from agencystack.results import LogLine, LogRequest, parse_since

if TYPE_CHECKING:
    from agencystack.engine.interface import Deployment

CHUNK = 64 * 1024


class Streams(EngineRoom):
    """Log, exec and volume streams on one engine."""

    def log_lines(self, containers: list[Observed], request: LogRequest) -> Iterator[LogLine]:
        if not containers:
            return
        since = parse_since(request.since)
        tail = "all" if request.tail is None else request.tail
        with self.client.guard():
            if len(containers) == 1:
                c = containers[0]
                stream = self.api.logs(c.id, stream=True, follow=request.follow, tail=tail, since=since)
                try:
                    for line in split_lines(stream):
                        yield LogLine(c.service, line)
                finally:
                    _close(stream)
            elif not request.follow:
                # each stream is in time order: merge them lazily by timestamp
                streams = [self.api.logs(c.id, stream=True, follow=False, tail=tail, since=since, timestamps=True)
                           for c in containers]
                try:
                    merged = heapq.merge(*[_stamped(c.service, s) for c, s in zip(containers, streams, strict=True)])
                    for _, service, line in merged:
                        yield LogLine(service, line)
                finally:
                    for s in streams:
                        _close(s)
            else:
                yield from self._follow(containers, tail, since)

    def _follow(self, containers: list[Observed], tail: Any, since: Any) -> Iterator[LogLine]:
        lines: queue.Queue[Any] = queue.Queue(maxsize=1024)
        done = object()
        streams: list[Any] = []
        stop = threading.Event()

        def put(item: Any) -> bool:
            """Hand an item to the consumer (bounded: a slow reader slows the pumps); False once it has gone."""
            while not stop.is_set():
                try:
                    lines.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def pump(c: Observed) -> None:
            try:
                stream = self.api.logs(c.id, stream=True, follow=True, tail=tail, since=since)
                streams.append(stream)
                if stop.is_set():
                    _close(stream)
                for line in split_lines(stream):
                    if not put(LogLine(c.service, line)):
                        break
            except Exception as exc:  # surfaced to the consumer
                put(exc)
            finally:
                put(done)

        threads = [threading.Thread(target=pump, args=(c,), daemon=True) for c in containers]
        for t in threads:
            t.start()
        remaining = len(threads)
        try:
            while remaining:
                item = lines.get()
                if item is done:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()
            for s in streams:
                _close(s)

    def exec(self, deployment: Deployment, service: str, command: list[str], *, env: Mapping[str, str] | None = None,
             stdout: IO[bytes] | None = None, stdin: IO[bytes] | None = None,
             stderr: IO[bytes] | None = None) -> int:
        out = stdout if stdout is not None else sys.stdout.buffer
        err = stderr if stderr is not None else sys.stderr.buffer
        with self.client.guard():
            container = running_container(self.client, deployment, service)
            api = self.api
            exec_id = api.exec_create(container.id, command, stdout=True, stderr=True, stdin=stdin is not None,
                                      environment=dict(env) if env else None)["Id"]
            if stdin is None:
                stream = api.exec_start(exec_id, stream=True, demux=True)
                try:
                    for chunk_out, chunk_err in stream:
                        if chunk_out:
                            out.write(chunk_out)
                        if chunk_err:
                            err.write(chunk_err)
                finally:
                    _close(stream)
            else:
                self._exec_with_stdin(exec_id, stdin, out, err)
            out.flush()
            return self._exit_code(exec_id)

    def _exec_with_stdin(self, exec_id: str, stdin: IO[bytes], out: IO[bytes], err: IO[bytes]) -> None:
        sock = self.api.exec_start(exec_id, socket=True)
        raw = getattr(sock, "_sock", sock)
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                while True:
                    chunk = stdin.read(CHUNK)
                    if not chunk:
                        break
                    raw.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the command stopped reading: its exit code tells
            except BaseException as exc:
                failure.append(exc)
            finally:
                try:
                    raw.shutdown(pysocket.SHUT_WR)  # EOF on the command's stdin
                except OSError:
                    pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            for stream_id, data in docker_socket.frames_iter(sock, tty=False):
                (out if stream_id != docker_socket.STDERR else err).write(data)
        finally:
            writer.join(timeout=5)
            try:
                sock.close()
                if raw is not sock:
                    raw.close()
            except OSError:
                pass
        if failure:
            raise failure[0]

    def _exit_code(self, exec_id: str) -> int:
        deadline = time.monotonic() + 10
        while True:
            info = self.api.exec_inspect(exec_id)
            if not info.get("Running") or time.monotonic() > deadline:
                code = info.get("ExitCode")
                return int(code) if code is not None else -1
            time.sleep(0.01)

    def _helper(self, deployment: Deployment, volume: str, *, command: list[str] | None = None) -> tuple[str, str]:
        """Create (not start) a helper container mounting the volume at /volume; return (id, image)."""
        stack = deployment.stack
        try:
            spec = next(v for v in stack.volumes if v.name == volume)
        except StopIteration:
            raise ComponentError(f"{deployment.component} has no volume {volume!r}") from None
        engine_name = labels.volume_name(deployment.project, volume, spec.external)
        try:
            self.api.inspect_volume(engine_name)
        except docker.errors.NotFound:
            raise ComponentError(f"volume {engine_name} does not exist: install {deployment.component} first") \
                from None
        local = image_index(self.api.images())
        candidates = [s.image for s in stack.services if any(m.source == volume for m in s.volumes)]
        candidates += [s.image for s in stack.services]
        image = next((ref for ref in candidates if normalize_ref(ref) in local), None)
        if image is None:
            image = next(iter(local), None)
        if image is None:
            raise ComponentError(f"no image is available locally to read volume {engine_name}")
        name = f"{deployment.project}-{volume}-helper-{int(time.time() * 1000) % 10**8}"
        helper_labels = {labels.PROJECT: deployment.project, labels.ONEOFF: "True", labels.HELPER: "true",
                         labels.MANAGED: "true", labels.CLIENT: deployment.client,
                         labels.COMPONENT: deployment.component}
        created = self.api.create_container(
            image, command=command, entrypoint=["sh", "-c"] if command else None, name=name, labels=helper_labels,
            user="0", host_config=self.api.create_host_config(
                mounts=[DockerMount(target="/volume", source=engine_name, type="volume")], network_mode="none"))
        return created["Id"], image

    def volume_export(self, deployment: Deployment, volume: str, stdout: IO[bytes]) -> None:
        with self.client.guard():
            helper, _ = self._helper(deployment, volume)
            try:
                stream, _ = self.api.get_archive(helper, "/volume/.", chunk_size=CHUNK)
                for chunk in stream:
                    stdout.write(chunk)
                stdout.flush()
            finally:
                self.api.remove_container(helper, force=True)

    def volume_import(self, deployment: Deployment, volume: str, stdin: IO[bytes]) -> None:
        # the archive's first entry is the volume's root ("."): the engine does not apply its owner and mode to
        # the directory it extracts into, so the helper does (Postgres refuses a data directory with others' rights)
        head = read_exactly(stdin, 512)
        script = "find /volume -mindepth 1 -maxdepth 1 -exec rm -rf {} +"
        root = root_entry(head)
        if root is not None:
            uid, gid, mode = root
            script += f" && chown {uid}:{gid} /volume && chmod {mode:o} /volume"
        with self.client.guard():
            helper, image = self._helper(deployment, volume, command=[script])
            try:
                try:
                    self.api.start(helper)
                    code = self.api.wait(helper, timeout=600).get("StatusCode")
                except docker.errors.APIError as exc:
                    raise ComponentError(f"cannot empty volume {volume} with image {image} (it needs a shell): "
                                         f"{explanation(exc)}") from None
                if code != 0:
                    raise ComponentError(f"emptying volume {volume} failed (exit {code})")

                def chunks() -> Iterator[bytes]:
                    if head:
                        yield head
                    while True:
                        chunk = stdin.read(CHUNK)
                        if not chunk:
                            return
                        yield chunk

                if not self.api.put_archive(helper, "/volume", chunks()):
                    raise ComponentError(f"the engine refused the archive for volume {volume}")
            finally:
                self.api.remove_container(helper, force=True)


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def root_entry(block: bytes) -> tuple[int, int, int] | None:
    """(uid, gid, mode) when a tar header block describes the archive's root directory ("." or "./")."""
    import tarfile

    if len(block) < 512:
        return None
    try:
        info = tarfile.TarInfo.frombuf(block[:512], "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return None
    if info.isdir() and info.name.rstrip("/") in (".", ""):
        return int(info.uid), int(info.gid), int(info.mode) & 0o7777
    return None


# -- log helpers -------------------------------------------------------------------------------------------------
def _close(stream: Any) -> None:
    try:
        stream.close()
    except Exception:
        pass


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Chunks (as frames arrive) to text lines, holding at most one partial line."""
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")


def _stamped(service: str, chunks: Iterable[bytes]) -> Iterator[tuple[str, str, str]]:
    for line in split_lines(chunks):
        stamp, _, text = line.partition(" ")
        yield _sortable(stamp), service, text


def _sortable(stamp: str) -> str:
    """RFC 3339 with the fraction padded to 9 digits, so that strings sort as times."""
    main, dot, rest = stamp.partition(".")
    if not dot:
        return stamp
    digits = re.match(r"\d*", rest).group(0)
    return f"{main}.{digits.ljust(9, '0')}{rest[len(digits):]}"
