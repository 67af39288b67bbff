"""Benchmark: is the queue view smooth with 1,000 items, in the real app?

Not a test (its name keeps it out of the suite; it asserts only that it could measure):
run it with `bench/ui.sh`. In the real app under Xvfb, on the local stack at the tests' 2 MB/s
and one part in flight (so the queue stays long while two uploads move and progress batches
arrive every 250 ms), it measures in the page:

- how long after `add_paths` the queue shows every row;
- the gaps between animation frames over a few seconds of uploading (p50, p95, max, and
  frames over 50 ms, which a user sees as a stutter);
- DOM mutations per second, and the web process's memory.

The peer, in the same run and the same page: the same 1,000 items drawn the plain way, the
whole list rebuilt from the data on every event (as a framework-free page or a keyless
re-render does). The app's own list is hidden meanwhile, so only one list is on screen.
Figures go to stdout as a Markdown table; docs/benchmarks.md has this machine's.
BENCH_CSS takes extra CSS rules (separated by `|`) to try against the same load.
"""
import os
import statistics
import time

from selenium.webdriver.support.ui import WebDriverWait

from conftest import invoke
from reelup_ui import wait_connected

MIB = 1024 * 1024
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))

# Frame gaps for `secs` seconds, DOM mutations meanwhile, and the time spent in script: in
# event callbacks from the app (every callback the IPC layer holds is wrapped once) and in
# animation-frame callbacks. What is left of a long frame is the engine's style, layout
# and paint.
_MEASURE_JS = """
const done = arguments[arguments.length - 1];
const secs = arguments[0];
const T = window.__TAURI_INTERNALS__;
const busy = (window.__busy ??= { events: 0, frames: 0 });
for (const [id, cb] of T.callbacks) {
  if (cb.__timed) continue;
  const timed = (data) => { const t0 = performance.now(); try { return cb(data); } finally { busy.events += performance.now() - t0; } };
  timed.__timed = true;
  T.callbacks.set(id, timed);
}
// This loop's own callbacks are not the app's work: it uses the unwrapped function.
const raf0 = (window.__raf0 ??= window.requestAnimationFrame.bind(window));
if (!window.__rafTimed) {
  window.__rafTimed = true;
  const raf = raf0;
  window.requestAnimationFrame = (cb) => raf((t) => { const t0 = performance.now(); try { cb(t); } finally { busy.frames += performance.now() - t0; } });
}
const start = { events: busy.events, frames: busy.frames };
const gaps = [];
let last = null, mutations = 0;
const mo = new MutationObserver((r) => (mutations += r.length));
mo.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
const end = performance.now() + secs * 1000;
function tick(t) {
  if (last !== null) gaps.push(t - last);
  last = t;
  if (t < end) raf0(tick);
  else { mo.disconnect(); done({ gaps, mutations, eventsMs: busy.events - start.events, framesMs: busy.frames - start.frames }); }
}
raf0(tick);
"""

# Calls add_paths, then waits (one check per frame) until `want` items are shown, in the
# queue or (those already finished) in history.
_ADD_JS = """
const done = arguments[arguments.length - 1];
const [paths, want] = [arguments[0], arguments[1]];
const t0 = performance.now();
window.__TAURI_INTERNALS__.invoke('add_paths', { paths }).then(() => {
  function check() {
    const n = document.querySelectorAll('[data-testid=upload-row], [data-testid=history-row]').length;
    if (n >= want) done({ ms: performance.now() - t0, rows: n });
    else if (performance.now() - t0 > 60000) done({ ms: null, rows: n });
    else requestAnimationFrame(check);
  }
  check();
}, (e) => done({ error: JSON.stringify(e) }));
"""

# The peer: a list rebuilt whole from the data on every progress or upload event.
_NAIVE_JS = """
const done = arguments[arguments.length - 1];
(async () => {
  const T = window.__TAURI_INTERNALS__;
  const items = new Map();
  for (const it of await T.invoke('list_uploads')) {
    if (it.state !== 'done' && it.state !== 'canceled') items.set(it.id, { ...it });
  }
  const real = document.querySelector('[data-testid=upload-list]');
  real.style.display = 'none';
  const list = document.createElement('ul');
  list.className = real.className;
  real.after(list);
  const mb = (n) => (n / 1e6).toFixed(1) + ' MB';
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const stats = (window.__naive = { busyMs: 0, rebuilds: 0 });
  function rebuild() {
    const t0 = performance.now();
    list.replaceChildren(...[...items.values()].map((it) => {
      const li = el('li', 'upload-row');
      li.dataset.state = it.state;
      const body = el('div', 'row-body');
      const top = el('div', 'row-top');
      top.append(el('span', 'name', it.name), el('span', 'size', mb(it.size)));
      const bar = el('div', 'progress');
      const fill = el('div', 'fill');
      fill.style.transform = `scaleX(${(it.size ? it.sent / it.size : 0).toFixed(3)})`;
      bar.append(fill);
      const meta = el('div', 'row-meta');
      const pct = it.size ? Math.floor((it.sent * 100) / it.size) : 0;
      meta.append(el('span', 'state', it.state), el('span', 'amount', it.sent ? `${pct}% · ${mb(it.sent)}` : ''));
      body.append(top, bar, meta);
      const actions = el('div', 'row-actions');
      actions.append(el('button', 'icon-button', 'Pause'), el('button', 'icon-button', 'Cancel'));
      li.append(body, actions);
      return li;
    }));
    stats.busyMs += performance.now() - t0;
    stats.rebuilds += 1;
  }
  const onProgress = T.transformCallback((e) => {
    for (const p of e.payload.items) {
      const it = items.get(p.id);
      if (it) it.sent = p.sent;
    }
    rebuild();
  });
  const onUpload = T.transformCallback((e) => {
    const it = e.payload;
    if (it.state === 'done' || it.state === 'canceled') items.delete(it.id);
    else items.set(it.id, { ...it });
    rebuild();
  });
  for (const [event, handler] of [['reelup://progress', onProgress], ['reelup://upload', onUpload]]) {
    await T.invoke('plugin:event|listen', { event, target: { kind: 'Any' }, handler });
  }
  rebuild();
  done(items.size);
})().catch((e) => done('ERR ' + e));
"""


def web_process_rss_mib() -> float:
    """Resident memory of the WebKit web processes (the page), from /proc."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith("WebKitWebProces"):
                    continue
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def sparse_videos(folder, count: int, start: int = 0) -> list[str]:
    """`count` 2 MiB videos that take no disk (holes read as zeros)."""
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(start, start + count):
        p = folder / f"clip {i:04}.mp4"
        with open(p, "wb") as f:
            f.truncate(2 * MIB)
        paths.append(str(p))
    return paths


def frames(driver) -> dict:
    got = driver.execute_async_script(_MEASURE_JS, SECONDS)
    gaps = sorted(got["gaps"])
    assert len(gaps) > 10, f"too few frames to measure: {gaps}"
    q = statistics.quantiles(gaps, n=20)
    return {
        "frames": len(gaps),
        "p50": statistics.median(gaps),
        "p95": q[18],
        "max": gaps[-1],
        "over50": sum(g > 50 for g in gaps),
        "mutations/s": got["mutations"] / SECONDS,
        "script ms/s": (got["eventsMs"] + got["framesMs"]) / SECONDS,
        "rss": web_process_rss_mib(),
    }


def rows_in_queue(driver) -> int:
    return driver.execute_script("return document.querySelectorAll('[data-testid=upload-row]').length")


def test_queue_view_with_1000_items(app, tmp_path):
    driver = app
    wait_connected(driver)
    driver.execute_script("document.querySelector('[data-testid=tab-queue]').click()")
    driver.set_script_timeout(120)
    folder = tmp_path / "many"
    results = []
    for rule in filter(None, os.environ.get("BENCH_CSS", "").split("|")):
        driver.execute_script("document.styleSheets[0].insertRule(arguments[0], document.styleSheets[0].cssRules.length)", rule)

    added = driver.execute_async_script(_ADD_JS, sparse_videos(folder, 10), 10)
    assert added.get("ms") is not None, added
    time.sleep(1)
    results.append(("Reelup's queue view", 10, added["ms"], frames(driver)))

    added = driver.execute_async_script(_ADD_JS, sparse_videos(folder, 990, start=10), 1000)
    assert added.get("ms") is not None, added
    time.sleep(1)
    results.append(("Reelup's queue view", rows_in_queue(driver), added["ms"], frames(driver)))

    # The same rows with nothing moving: what 1,000 rows cost by themselves.
    invoke(driver, "pause_all")
    WebDriverWait(driver, 60, poll_frequency=0.5).until(
        lambda d: d.execute_script(
            "return document.querySelectorAll('[data-testid=upload-row]:not([data-state=paused])').length === 0"
        ),
        "the queue did not pause",
    )
    time.sleep(1)
    results.append(("Reelup's queue view, all paused", rows_in_queue(driver), None, frames(driver)))
    invoke(driver, "resume_all")
    time.sleep(2)

    t0 = time.monotonic()
    shown = driver.execute_async_script(_NAIVE_JS)
    assert isinstance(shown, int), shown
    first_ms = (time.monotonic() - t0) * 1000
    time.sleep(1)
    naive = frames(driver)
    busy = driver.execute_script("return window.__naive")
    results.append(("rebuild the list per event", shown, first_ms, naive))

    print()
    print(f"Queue view in the real app (WebKitGTK under Xvfb), {SECONDS:.0f} s of uploads per row")
    print()
    print("| list | items | all rows shown after | frames | frame gap p50 | p95 | max | frames > 50 ms | script ms/s | DOM mutations/s | web process RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, ms, f in results:
        shown = "" if ms is None else f"{ms:.0f} ms"
        print(
            f"| {name} | {n} | {shown} | {f['frames']} | {f['p50']:.1f} ms | {f['p95']:.1f} ms | "
            f"{f['max']:.0f} ms | {f['over50']} | {f['script ms/s']:.1f} | {f['mutations/s']:.0f} | {f['rss']:.0f} MiB |"
        )
    print()
    print(f"rebuild per event: {busy['rebuilds']} rebuilds, {busy['busyMs'] / max(1, busy['rebuilds']):.1f} ms of script each")

    # Leave the queue empty for the fixture's tidy-up: one call each, all at once.
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "const T = window.__TAURI_INTERNALS__;"
        "T.invoke('pause_all').then(() => T.invoke('list_uploads')).then((items) => Promise.all("
        "items.filter((i) => i.state !== 'done').map((i) => T.invoke('cancel_upload', { id: i.id })"
        ".catch(() => null).then(() => T.invoke('remove_upload', { id: i.id })).catch(() => null))))"
        ".then(() => done(null), (e) => done(String(e)));"
    )
