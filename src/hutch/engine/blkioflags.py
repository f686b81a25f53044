"""The block I/O flags of `run`/`create`, as podman reads them: --blkio-weight[-device] and
--device-read/write-bps/iops, into linux.resources.blockIO; imported only when one is given."""

from __future__ import annotations

import os
import stat

from hutch.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hutch.engine.cgroupflags import CgroupFlags


def block_io(f: CgroupFlags) -> dict[str, Any]:
    """linux.resources.blockIO from the flags."""
    blkio: dict[str, Any] = {}
    if f.blkio_weight is not None:
        blkio["weight"] = _weight(f.blkio_weight, "--blkio-weight", f.blkio_weight)
    for text in f.blkio_weight_device:
        path, sep, weight = text.rpartition(":")
        if not sep or not path:
            raise ConfigError(f"--blkio-weight-device {text!r}: expected DEVICE:WEIGHT")
        major, minor = _device_numbers(path, "--blkio-weight-device", text)
        w = _weight(weight, "--blkio-weight-device", text)
        blkio.setdefault("weightDevice", []).append({"major": major, "minor": minor, "weight": w})
    for flag, key, texts, iops in (
        ("--device-read-bps", "throttleReadBpsDevice", f.device_read_bps, False),
        ("--device-write-bps", "throttleWriteBpsDevice", f.device_write_bps, False),
        ("--device-read-iops", "throttleReadIOPSDevice", f.device_read_iops, True),
        ("--device-write-iops", "throttleWriteIOPSDevice", f.device_write_iops, True),
    ):
        for text in texts:
            blkio.setdefault(key, []).append(_throttle(text, flag, iops))
    return blkio


def _device_numbers(path: str, flag: str, text: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise ConfigError(f"{flag} {text!r}: {path}: {e.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise ConfigError(f"{flag} {text!r}: {path} is not a block device")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def _weight(text: str, flag: str, whole: str) -> int:
    if not text.isdigit() or not 10 <= int(text) <= 1000:
        raise ConfigError(f"{flag} {whole!r}: the weight must be between 10 and 1000")
    return int(text)


def _throttle(text: str, flag: str, iops: bool) -> dict[str, int]:
    """DEVICE:RATE, the rate in bytes per second (512kb, 1mb) or I/O operations per second."""
    from hutch.engine.resources import parse_bytes

    path, sep, rate_text = text.rpartition(":")
    if not sep or not path:
        raise ConfigError(f"{flag} {text!r}: expected DEVICE:RATE")
    major, minor = _device_numbers(path, flag, text)
    if iops:
        if not rate_text.isdigit():
            raise ConfigError(f"{flag} {text!r}: the rate must be a number of I/O operations per second")
        rate = int(rate_text)
    else:
        rate = parse_bytes(rate_text, flag)
    return {"major": major, "minor": minor, "rate": rate}
