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

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        png(os.path.join(OUT, name), size, body(BRAND))
    # The tray icon while uploads are running: same shape, green.
    png(os.path.join(OUT, "tray-idle.png"), 64, body(BRAND))
    png(os.path.join(OUT, "tray-uploading.png"), 64, body(((52, 211, 153), (5, 150, 105))))
