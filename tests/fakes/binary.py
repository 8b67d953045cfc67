"""Small but real media files, generated deterministically: PNG images and MP3/WAV/PCM audio.

The MP3 is a run of silent MPEG-2 Layer III frames (24 kHz, 64 kbit/s, mono: 192 bytes and
24 ms each), which `file` reports as "MPEG ADTS, layer III, v2, 64 kbps, 24 kHz, Monaural"
and any decoder plays as silence. WAV and PCM carry a 440 Hz tone, 16-bit little-endian.
"""

from __future__ import annotations

import math
import struct
import zlib

MP3_FRAME_SECONDS = 576 / 24000
MP3_BYTES_PER_SECOND = 8000
_MP3_HEADER = bytes((0xFF, 0xF3, 0x84, 0xC4))  # sync, MPEG-2, layer III, no CRC; 64k, 24 kHz; mono
_MP3_FRAME = _MP3_HEADER + bytes(192 - 4)  # zero side info: no main data, a silent granule
PCM_RATE = 24000


def png(
    width: int = 1, height: int = 1, rgba: tuple[int, int, int, int] = (16, 163, 127, 255)
) -> bytes:
    """A valid RGBA PNG filled with one colour."""
    row = b"\x00" + bytes(rgba) * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def speech_seconds(text: str) -> float:
    """How long the fake voice takes to say `text`: 60 ms per character, at least 0.5 s."""
    return max(0.5, 0.06 * len(text))


def mp3(seconds: float) -> bytes:
    frames = max(1, math.ceil(seconds / MP3_FRAME_SECONDS))
    return _MP3_FRAME * frames


def pcm(seconds: float) -> bytes:
    """16-bit little-endian mono samples at 24 kHz of a quiet 440 Hz tone."""
    count = int(seconds * PCM_RATE)
    samples = (int(3000 * math.sin(2 * math.pi * 440 * i / PCM_RATE)) for i in range(count))
    return struct.pack(f"<{count}h", *samples)


def wav(seconds: float) -> bytes:
    data = pcm(seconds)
    fmt = struct.pack("<HHIIHH", 1, 1, PCM_RATE, PCM_RATE * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def split(data: bytes, parts: int) -> tuple[bytes, ...]:
    """`data` in `parts` nearly equal non-empty pieces (fewer if it is tiny)."""
    size = max(1, -(-len(data) // parts))
    return tuple(data[i : i + size] for i in range(0, len(data), size))
