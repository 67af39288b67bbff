#!/usr/bin/env python3
"""Draws Reelup's icons (a play triangle on a rounded gradient square) as PNGs.

Pure standard library so it runs anywhere; the PNGs are committed, rerun this only to
change the artwork: python3 scripts/make-icons.py
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "icons")


def png(path, size, pixel):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            row += bytes(pixel((x + 0.5) / size, (y + 0.5) / size))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def inside_rounded(u, v, r=0.22):
    cx = min(max(u, r), 1 - r)
    cy = min(max(v, r), 1 - r)
    return (u - cx) ** 2 + (v - cy) ** 2 <= r * r


def inside_triangle(u, v):
    # Play triangle pointing right, centred a little right of middle.
    x0, x1 = 0.38, 0.74
    if not (x0 <= u <= x1):
        return False
    half = 0.21 * (x1 - u) / (x1 - x0)
    return abs(v - 0.5) <= half


def body(accent):
    def pixel(u, v):
        if not inside_rounded(u, v):
            return (0, 0, 0, 0)
        if inside_triangle(u, v):
            return (255, 255, 255, 255)
        t = (u + v) / 2
        top, bottom = accent
        return tuple(int(top[i] * (1 - t) + bottom[i] * t) for i in range(3)) + (255,)

    return pixel


BRAND = ((255, 94, 98), (124, 58, 237))
GREEN = ((52, 211, 153), (5, 150, 105))


def with_progress(base, fraction):
    """The uploading icon with a bar along the bottom edge filled to `fraction`."""
    def pixel(u, v):
        if 0.80 <= v <= 0.92 and 0.14 <= u <= 0.86 and inside_rounded(u, v):
            filled = u <= 0.14 + 0.72 * fraction
            return (255, 255, 255, 255) if filled else (0, 70, 50, 255)
        return base(u, v)

    return pixel


def paused(u, v):
    if not inside_rounded(u, v):
        return (0, 0, 0, 0)
    if 0.30 <= v <= 0.70 and (0.34 <= u <= 0.45 or 0.55 <= u <= 0.66):
        return (255, 255, 255, 255)
    return (107, 114, 128, 255)


def error(u, v):
    if not inside_rounded(u, v):
        return (0, 0, 0, 0)
    if 0.45 <= u <= 0.55 and (0.22 <= v <= 0.60 or 0.68 <= v <= 0.78):
        return (255, 255, 255, 255)
    return (220, 38, 38, 255)

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        png(os.path.join(OUT, name), size, body(BRAND))
    # The tray icon while uploads are running: same shape, green.
    png(os.path.join(OUT, "tray-idle.png"), 64, body(BRAND))
    png(os.path.join(OUT, "tray-uploading.png"), 64, body(GREEN))
    # Progress stages for the tray: a quarter, half, three quarters, nearly done.
    for stage in range(4):
        png(os.path.join(OUT, f"tray-uploading-{stage}.png"), 64, with_progress(body(GREEN), (stage + 1) / 4))
    png(os.path.join(OUT, "tray-paused.png"), 64, paused)
    png(os.path.join(OUT, "tray-error.png"), 64, error)
