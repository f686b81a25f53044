"""The k8s-file log conmon writes (userdata/ctr.log), read as podman logs reads it.

Each line is `TIME STREAM TAG CONTENT`: TIME in RFC 3339 with nanoseconds, STREAM stdout or stderr, TAG F
for a full line or P for a part of one (conmon splits long lines and writes what it has when the output
pauses mid-line); the parts of a line are joined up to its F. --since/--until take RFC 3339 times, Unix
times or Go durations before now (10m, 1h30m, 1.5s).
"""

from __future__ import annotations

import calendar
import time

from hutch.errors import HutchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from dataclasses import dataclass
else:
    from hutch.record import dataclass


@dataclass(slots=True)
class Line:
    time_ns: int  # of the line's first part
    stream: str  # stdout or stderr
    text: bytes  # without the newline
    complete: bool  # False: the log ends inside this line


def parse_timestamp(text: str) -> int:
    """An RFC 3339 time (`2024-05-01T10:00:00.123456789+02:00`, `...Z`, or a date) -> ns since the epoch."""
    t = text.strip()
    try:
        if len(t) == 10:
            t += "T00:00:00Z"
        date, _, rest = t.partition("T")
        year, month, day = (int(x) for x in date.split("-"))
        offset = 0
        if rest.endswith(("Z", "z")):
            rest = rest[:-1]
        else:
            sign_at = max(rest.rfind("+"), rest.rfind("-"))
            if sign_at > 0:
                zone = rest[sign_at + 1 :]
                hh, _, mm = zone.partition(":")
                offset = (int(hh) * 3600 + int(mm or 0) * 60) * (1 if rest[sign_at] == "+" else -1)
                rest = rest[:sign_at]
        clock, _, fraction = rest.partition(".")
        hour, minute, second = (int(x) for x in clock.split(":"))
        nanos = int((fraction + "000000000")[:9]) if fraction else 0
    except ValueError:
        raise HutchError(f"{text!r}: not an RFC 3339 time") from None
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - offset
    return seconds * 1_000_000_000 + nanos


def parse_duration(text: str) -> float:
    """A Go duration (`10m`, `1h30m`, `1.5s`, `300ms`) -> seconds."""
    from hutch import duration

    try:
        return duration.parse_seconds(text)
    except ValueError as e:
        raise HutchError(f"{text!r}: {e}") from None


def parse_time(text: str, flag: str, now: float | None = None) -> int:
    """--since/--until: an RFC 3339 time, a Unix time (seconds[.fraction]) or a duration before now; ns."""
    now = time.time() if now is None else now
    value = text.strip()
    try:
        if value.replace(".", "", 1).isdigit():
            return int(float(value) * 1e9)
        if value[:1].isdigit() and ("-" in value[:5] or "T" in value):
            return parse_timestamp(value)
        return int((now - parse_duration(value)) * 1e9)
    except HutchError as e:
        raise HutchError(
            f"{flag} {text!r}: expected an RFC 3339 time, a Unix time or a duration: {e}"
        ) from None


def format_time(time_ns: int) -> str:
    """As Go's RFC3339Nano prints a UTC time (trailing zeros of the fraction dropped)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    return f"{base}{fraction}Z"


class Reader:
    """Lines of a k8s-file log, parts joined; `feed` takes bytes as they are appended."""

    def __init__(self) -> None:
        self._rest = b""
        self._parts: dict[str, tuple[int, list[bytes]]] = {}

    def feed(self, data: bytes) -> Iterator[Line]:
        data = self._rest + data
        *lines, self._rest = data.split(b"\n")
        for raw in lines:
            line = self._line(raw)
            if line is not None:
                yield line

    def _line(self, raw: bytes) -> Line | None:
        fields = raw.split(b" ", 3)
        if len(fields) < 3:
            return None  # not a log line (a torn write is completed by the next feed)
        try:
            when = parse_timestamp(fields[0].decode())
        except (HutchError, UnicodeDecodeError):
            return None
        stream = fields[1].decode(errors="replace")
        tag = fields[2].split(b":")
        content = fields[3] if len(fields) > 3 else b""
        first, parts = self._parts.pop(stream, (when, []))
        parts.append(content)
        if b"P" in tag:
            self._parts[stream] = (first, parts)
            return None
        return Line(first, stream, b"".join(parts), True)

    def pending(self) -> list[Line]:
        """Lines still open at the end of the log (the container stopped mid-line)."""
        out = [Line(first, stream, b"".join(parts), False) for stream, (first, parts) in self._parts.items()]
        self._parts.clear()
        return sorted(out, key=lambda line: line.time_ns)


def lines(
    path: str,
    *,
    since: int | None = None,
    until: int | None = None,
    tail: int = -1,
    follow: bool = False,
    running: Callable[[], bool] | None = None,
    interval: float = 0.1,
) -> Iterator[Line]:
    """The log's lines within since..until (ns), the last `tail` of them (all when negative); with `follow`,
    then the lines written after, until `running()` says the container is gone."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the with below; no log is no error)
    except FileNotFoundError:
        return
    with f:
        reader = Reader()
        found = [ln for ln in reader.feed(f.read()) if _within(ln, since, until)]
        if not follow:
            found += [ln for ln in reader.pending() if _within(ln, since, until)]
        yield from (found[-tail:] if tail > 0 else [] if tail == 0 else found)
        while follow:
            data = f.read()
            if data:
                yield from (ln for ln in reader.feed(data) if _within(ln, since, until))
                continue
            if running is not None and not running():
                yield from (ln for ln in reader.feed(f.read()) if _within(ln, since, until))
                yield from (ln for ln in reader.pending() if _within(ln, since, until))
                return
            time.sleep(interval)


def _within(line: Line, since: int | None, until: int | None) -> bool:
    return (since is None or line.time_ns >= since) and (until is None or line.time_ns <= until)
