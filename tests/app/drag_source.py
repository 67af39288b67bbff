#!/usr/bin/env python3
"""A tiny GTK window whose button is a drag source of file:// URIs, as a file manager is.

Run with the system Python (python3-gi): drag_source.py X Y FILE... . It prints "ready"
once its window is on screen; the test then drags from it with xdotool. Each drag then
prints "sent" when the target took the URIs, "failed RESULT" when the drag did not drop,
and "end" when it is over: only after "end" may the window go (the target reads the URIs
from it after the button is up, which a busy target does late).
"""
import sys
from pathlib import Path

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GLib, Gtk  # noqa: E402

x, y = int(sys.argv[1]), int(sys.argv[2])
uris = [Path(p).resolve().as_uri() for p in sys.argv[3:]]

win = Gtk.Window(title="reelup-drag-source")
win.set_default_size(200, 120)
win.move(x, y)
button = Gtk.Button(label="drag me")
button.drag_source_set(Gdk.ModifierType.BUTTON1_MASK, [], Gdk.DragAction.COPY)
button.drag_source_add_uri_targets()


def data_get(_w, _ctx, data, _info, _time):
    data.set_uris(uris)
    print("sent", flush=True)


def failed(_w, _ctx, result):
    print(f"failed {result.value_nick}", flush=True)
    return False


button.connect("drag-data-get", data_get)
button.connect("drag-failed", failed)
button.connect("drag-end", lambda _w, _ctx: print("end", flush=True))
win.add(button)
win.connect("destroy", Gtk.main_quit)
win.show_all()
GLib.timeout_add(300, lambda: print("ready", flush=True) and False)
Gtk.main()
