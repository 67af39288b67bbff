"""Helpers for bench/upload.sh, bench/many.sh and bench/limit-rate.sh: talk to the
benchmark's store with boto3, read the store's log, make the payloads, print the tables.

  s3.py presign KEY                  a presigned PUT URL for KEY (1 hour)
  s3.py check KEY SIZE               HEAD KEY; exit 1 unless it exists with exactly SIZE bytes
  s3.py delete KEY                   remove KEY
  s3.py verify DIR PREFIX [JSONOUT]  every file of DIR in the store with its size, under PREFIX
                                     (or, with reelup's --json output, under the key it names);
                                     prints "objects<TAB>bytes" found, exit 1 on any mismatch
  s3.py delete-prefix PREFIX         remove every object under PREFIX
  s3.py make-files DIR COUNT SEED    COUNT files of 2-10 MB random bytes, sizes from SEED
  s3.py storelog LOG FROM START      from line FROM of the server's log: seconds after START
                                     when the first part (or object) and the last
                                     CompleteMultipartUpload reached the store, reelup's
                                     Complete as its API timed it, and the store's operations
                                     counted, byte-carrying requests at once (mean); one
                                     per line, empty when not seen
  s3.py rate TEXT                    bytes per second of a --limit-rate value (5MB, 4MiB)
  s3.py record RESULTS KEY=VALUE...  append one run to RESULTS (JSON lines)
  s3.py table RESULTS INFO           the Markdown report for the case INFO names

The store comes from BENCH_S3, BENCH_BUCKET, BENCH_KEY_ID and BENCH_KEY_SECRET.
"""

import datetime
import json
import os
import random
import re
import statistics
import sys

MIB = 1024 * 1024


def client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ["BENCH_S3"],
        aws_access_key_id=os.environ["BENCH_KEY_ID"],
        aws_secret_access_key=os.environ["BENCH_KEY_SECRET"],
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def presign(key):
    print(
        client().generate_presigned_url(
            "put_object",
            Params={"Bucket": os.environ["BENCH_BUCKET"], "Key": key},
            ExpiresIn=3600,
        )
    )


def check(key, size):
    from botocore.exceptions import ClientError

    try:
        head = client().head_object(Bucket=os.environ["BENCH_BUCKET"], Key=key)
    except ClientError as e:
        print(f"HEAD {key}: {e}", file=sys.stderr)
        sys.exit(1)
    if head["ContentLength"] != int(size):
        print(f"HEAD {key}: {head['ContentLength']} bytes, expected {size}", file=sys.stderr)
        sys.exit(1)


def delete(key):
    client().delete_object(Bucket=os.environ["BENCH_BUCKET"], Key=key)


def listing(prefix):
    """{key: size} of every object under prefix."""
    objects = {}
    pages = client().get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=os.environ["BENCH_BUCKET"], Prefix=prefix):
        for o in page.get("Contents", []):
            objects[o["Key"]] = o["Size"]
    return objects


def verify(folder, prefix, jsonout=None):
    expected = {e.name: e.stat().st_size for e in os.scandir(folder) if e.is_file()}
    if jsonout:
        # reelup names the keys itself (the user's prefix and a UUID) and prints each one.
        keys = {}
        for line in open(jsonout):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if "key" in item and "file" in item:
                keys[os.path.basename(item["file"])] = item["key"]
    else:
        keys = {name: prefix + name for name in expected}
    found = listing(prefix)
    problems = []
    for name, size in sorted(expected.items()):
        key = keys.get(name)
        if key is None:
            problems.append(f"{name}: no key reported")
        elif key not in found:
            problems.append(f"{name}: {key} is not in the store")
        elif found[key] != size:
            problems.append(f"{name}: {found[key]} bytes in the store, {size} on disk")
    extra = len(found) - len(set(keys.values()) & set(found))
    if extra:
        problems.append(f"{extra} unexpected object(s) under {prefix}")
    good = [keys[n] for n in expected if keys.get(n) in found and found[keys[n]] == expected[n]]
    print(f"{len(good)}\t{sum(found[k] for k in good)}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        print(f"{len(problems)} problem(s): " + "; ".join(problems[:3]) + more, file=sys.stderr)
        sys.exit(1)


def delete_prefix(prefix):
    s3 = client()
    keys = list(listing(prefix))
    for i in range(0, len(keys), 1000):
        batch = [{"Key": k} for k in keys[i : i + 1000]]
        s3.delete_objects(Bucket=os.environ["BENCH_BUCKET"], Delete={"Objects": batch, "Quiet": True})
    left = listing(prefix)
    for key in left:  # a store without DeleteObjects: one at a time
        s3.delete_object(Bucket=os.environ["BENCH_BUCKET"], Key=key)


def file_sizes(count, seed):
    rng = random.Random(int(seed))
    return [rng.randint(2_000_000, 10_000_000) for _ in range(int(count))]


def make_files(folder, count, seed):
    """Kept between runs: made again only if a file is missing or has the wrong size."""
    sizes = file_sizes(count, seed)
    names = [f"clip-{i + 1:04d}.mp4" for i in range(len(sizes))]

    def complete():
        try:
            present = {e.name: e.stat().st_size for e in os.scandir(folder)}
        except FileNotFoundError:
            return False
        return present == dict(zip(names, sizes))

    if complete():
        return
    tmp = folder + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    for name in os.listdir(tmp):
        if name not in names:
            os.remove(os.path.join(tmp, name))
    for name, size in zip(names, sizes):
        path = os.path.join(tmp, name)
        if os.path.exists(path) and os.path.getsize(path) == size:
            continue
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, MIB)
                f.write(os.urandom(n))
                left -= n
    if os.path.exists(folder):
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    os.rename(tmp, folder)


LOG_TIME = re.compile(r"^(\S+Z) ")
LOG_OP = re.compile(r"resolved route op=(\w+)")
LOG_CALL = re.compile(r"call\{start_time=([^}]*)\}")
LOG_DURATION = re.compile(r"s3s::service: duration=([0-9.]+)(ns|µs|ms|s) ")
LOG_COMPLETE = re.compile(r"path=/s3/multipart/\S+/complete .*micros=(\d+)")
BYTE_OPS = {"UploadPart", "PutObject", "PostObject"}
UNITS = {"ns": 1e-9, "µs": 1e-6, "ms": 1e-3, "s": 1.0}


def storelog(path, first_line, start):
    start = float(start)
    first = complete_at = api_complete = None
    ops = {}
    # s3s's `call` span (start_time) ties each request's operation to its duration.
    call_op, call_duration = {}, {}
    with open(path, errors="replace") as f:
        for n, line in enumerate(f, 1):
            if n < int(first_line):
                continue
            m = LOG_COMPLETE.search(line)
            if m:
                api_complete = int(m.group(1)) / 1e6
                continue
            call = LOG_CALL.search(line)
            d = LOG_DURATION.search(line)
            if d and call:
                call_duration[call.group(1)] = float(d.group(1)) * UNITS[d.group(2)]
                continue
            op = LOG_OP.search(line)
            t = LOG_TIME.match(line)
            if not op or not t:
                continue
            at = datetime.datetime.fromisoformat(t.group(1).replace("Z", "+00:00")).timestamp()
            op = op.group(1)
            ops[op] = ops.get(op, 0) + 1
            if call:
                call_op[call.group(1)] = (op, at)
            if op in BYTE_OPS and first is None:
                first = at - start
            if op == "CompleteMultipartUpload":
                complete_at = at - start
    # Requests carrying bytes the store was working on at once, on average, from the first
    # one's arrival to the last one's answer: how far a client overlaps its files and parts.
    spans = [
        (at, at + call_duration[c]) for c, (op, at) in call_op.items()
        if op in BYTE_OPS and c in call_duration
    ]
    at_once = None
    if spans:
        elapsed = max(e for _, e in spans) - min(s for s, _ in spans)
        at_once = sum(e - s for s, e in spans) / elapsed if elapsed > 0 else None

    def cell(v):
        return "" if v is None else f"{v:.3f}"

    summary = ",".join(f"{k}:{v}" for k, v in sorted(ops.items()))
    # One per line: bash's `read` would merge empty tab-separated fields.
    print(f"{cell(first)}\n{cell(complete_at)}\n{cell(api_complete)}\n{summary}\n{cell(at_once)}")


def rate(text):
    """The CLI's units (reelup_core::BandwidthLimit::parse_rate): kB/MB/GB are powers of
    ten, KiB/MiB/GiB powers of two, an optional /s."""
    t = text.strip().removesuffix("/s").strip()
    m = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]*)", t)
    scale = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9,
             "kib": 2**10, "mib": 2**20, "gib": 2**30}
    if not m or m.group(2).lower() not in scale:
        sys.exit(f"{text!r} is not a rate; use e.g. 5000000, 5MB or 8MiB")
    print(round(float(m.group(1)) * scale[m.group(2).lower()]))


def record(results, *pairs):
    """One run as a JSON line; `times` is GNU time's wall, user, sys, RSS KiB (TSV)."""
    run = dict(p.split("=", 1) for p in pairs)
    wall, user, sys_, rss_kb = (run.pop("times", "") or "0\t0\t0\t0").split("\t")
    run.update(wall=float(wall), cpu=float(user) + float(sys_), rss=int(rss_kb) / 1024)
    run["run"] = int(run["run"])
    run["ok"] = run["ok"] == "1"
    for k in ("store_cpu", "first", "complete_at", "api_complete", "objects", "bytes", "at_once"):
        if k in run:
            run[k] = float(run[k]) if run[k] != "" else None
    with open(results, "a") as f:
        f.write(json.dumps(run) + "\n")


def fmt_range(values, digits):
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def cell(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def header(info, what):
    print()
    print(
        f"Machine: {info['nproc']} cores ({info['cpu']}), Linux {info['kernel']}, "
        f"{info['mem']} memory; load average {info['load_before']} before, "
        f"{info['load_after']} after"
    )
    print(f"Code: reelup {info['rev']}, release build")
    print(
        f"{what}; store: reelup-server --local (s3s-fs, SigV4 checked) on 127.0.0.1, same "
        f"machine; {info['runs']} run(s) per tool, medians with (min–max) of successful runs"
    )
    print()


def target(med, label, num, den, what, limit):
    """One target ratio: met, or missed and by how much."""
    if num not in med or den not in med or med[den][what] in (None, 0) or med[num][what] is None:
        missing = num if num not in med or med[num][what] is None else den
        print(f"- {label}: cannot tell, no figure for {missing}")
        return
    ratio = med[num][what] / med[den][what]
    if ratio <= limit:
        verdict = f"**met** ({(1 - ratio / limit) * 100:.0f}% under the limit)"
    else:
        verdict = f"**missed**, {(ratio / limit - 1) * 100:.0f}% over the limit"
    print(f"- {label}: {ratio:.2f}x (target <= {limit}x): {verdict}")


def failed_runs(runs):
    failed = [r for r in runs if not r["ok"]]
    if failed:
        print()
        print("Failed runs (not counted):")
        print()
        for r in failed:
            print(f"- {r['tool']} run {r['run']}: {r.get('note', '')}")


def medians(runs, tools, keys):
    med = {}
    for tool in tools:
        good = [r for r in runs if r["tool"] == tool["name"] and r["ok"]]
        if good:
            med[tool["name"]] = {
                k: (statistics.median(vals) if (vals := [r[k] for r in good if r.get(k) is not None]) else None)
                for k in keys
            }
            med[tool["name"]]["good"] = good
    return med


def before_complete(run):
    """Seconds from the client's start to its CompleteMultipartUpload reaching the store; a
    single PUT (curl) is all "before Complete". reelup's Complete goes through its presign
    API; without a store log line, its wall time minus the API's Complete is the fallback."""
    if run["tool"].startswith("curl"):
        return run["wall"]
    if run.get("complete_at") is not None:
        return run["complete_at"]
    if run.get("api_complete") is not None:
        return run["wall"] - run["api_complete"]
    return None


def table_1gib(runs, info):
    size = int(info["size"])
    for r in runs:
        r["before"] = before_complete(r)
    header(info, f"Payload: {size / MIB / 1024:g} GiB ({size:,} bytes) of random bytes from a warm page cache")
    print(
        "| tool | settings | OK runs | wall s | before Complete s | CPU s (user+sys) "
        "| peak RSS MiB | MiB/s | store CPU s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    med = medians(runs, info["tools"], ["wall", "cpu", "rss", "before", "store_cpu"])
    for tool in info["tools"]:
        name, settings = tool["name"], tool["settings"]
        total = sum(1 for r in runs if r["tool"] == name)
        if name not in med:
            print(f"| {name} | {settings} | 0 of {total} | failed | | | | | |")
            continue
        good = med[name]["good"]
        befores = [r["before"] for r in good if r["before"] is not None]
        print(
            f"| {name} | {settings} | {len(good)} of {total} "
            f"| {fmt_range([r['wall'] for r in good], 2)} "
            f"| {fmt_range(befores, 2) if befores else ''} "
            f"| {fmt_range([r['cpu'] for r in good], 2)} "
            f"| {fmt_range([r['rss'] for r in good], 0)} "
            f"| {size / MIB / med[name]['wall']:,.0f} | {med[name]['store_cpu']:.2f} |"
        )
    print()
    print("Targets (medians):")
    print()
    reelup, aws, curl = "reelup upload", "aws s3 cp", "curl -T (presigned PUT)"
    target(med, "reelup CPU / aws-cli CPU", reelup, aws, "cpu", 0.5)
    target(med, "reelup peak RSS / aws-cli peak RSS", reelup, aws, "rss", 0.5)
    target(med, "reelup before Complete / curl's single PUT", reelup, curl, "before", 1.1)
    target(med, "reelup wall / aws-cli wall", reelup, aws, "wall", 0.7)

    if reelup in med and med[reelup]["before"] is not None:
        good = med[reelup]["good"]
        firsts = [r["first"] for r in good if r.get("first") is not None]
        apis = [r["api_complete"] for r in good if r.get("api_complete") is not None]
        print()
        print(
            "Where reelup's wall time goes (medians, from the server's log): "
            + (f"{statistics.median(firsts):.2f} s until its first part reached the store, " if firsts else "")
            + f"{med[reelup]['before']:.2f} s until its CompleteMultipartUpload did, "
            + (f"{statistics.median(apis):.2f} s in Complete as its presign API timed it "
               "(s3s-fs re-reads and copies every part into the final file; aws and rclone "
               "wait for the same step), " if apis else "")
            + f"{med[reelup]['wall']:.2f} s in all."
        )
    failed_runs(runs)
    print()
    print("<details><summary>Every run</summary>")
    print()
    print("| tool | run | OK | wall s | first part s | before Complete s | CPU s | peak RSS MiB | store CPU s | reelup API Complete s | parts at once |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in sorted(runs, key=lambda r: (r["tool"], r["run"])):
        print(
            f"| {r['tool']} | {r['run']} | {'yes' if r['ok'] else 'no'} | {r['wall']:.2f} "
            f"| {cell(r.get('first'))} | {cell(r['before'])} | {r['cpu']:.2f} | {r['rss']:.0f} "
            f"| {cell(r.get('store_cpu'))} | {cell(r.get('api_complete'))} | {cell(r.get('at_once'), 1)} |"
        )
    print()
    print("</details>")


def table_many(runs, info):
    files, total = int(info["files"]), int(info["bytes"])
    header(
        info,
        f"Payload: {files:,} files of random bytes, {total:,} bytes in all "
        f"({total / 1e9:.2f} GB, {int(info['smallest']):,} to {int(info['largest']):,} bytes each, "
        f"sizes from seed {info['seed']}), from a warm page cache",
    )
    print(
        "| tool | settings | OK runs | files | bytes | first byte s | wall s | CPU s (user+sys) "
        "| peak RSS MiB | files/s | MB/s | store CPU s | at once |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    med = medians(runs, info["tools"], ["wall", "cpu", "rss", "store_cpu", "objects", "bytes", "first", "at_once"])
    for tool in info["tools"]:
        name, settings = tool["name"], tool["settings"]
        total_runs = sum(1 for r in runs if r["tool"] == name)
        if name not in med:
            print(f"| {name} | {settings} | 0 of {total_runs} | | | | failed | | | | | | |")
            continue
        good, m = med[name]["good"], med[name]
        print(
            f"| {name} | {settings} | {len(good)} of {total_runs} | {m['objects']:,.0f} "
            f"| {m['bytes']:,.0f} | {cell(m['first'])} | {fmt_range([r['wall'] for r in good], 2)} "
            f"| {fmt_range([r['cpu'] for r in good], 2)} | {fmt_range([r['rss'] for r in good], 0)} "
            f"| {files / m['wall']:,.1f} | {total / 1e6 / m['wall']:,.0f} | {m['store_cpu']:.2f} "
            f"| {cell(m['at_once'], 1)} |"
        )
    print()
    print("Targets (medians):")
    print()
    reelup = "reelup upload"
    for peer in ("aws s3 cp --recursive", "rclone copy"):
        target(med, f"reelup wall / {peer.split()[0]} wall (faster)", reelup, peer, "wall", 1.0)
    target(med, "reelup CPU / aws-cli CPU", reelup, "aws s3 cp --recursive", "cpu", 0.5)
    failed_runs(runs)
    print()
    print("<details><summary>Every run</summary>")
    print()
    print("| tool | run | OK | objects | bytes | first byte s | wall s | CPU s | peak RSS MiB | store CPU s | at once | store requests |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in sorted(runs, key=lambda r: (r["tool"], r["run"])):
        print(
            f"| {r['tool']} | {r['run']} | {'yes' if r['ok'] else 'no'} | {cell(r.get('objects'), 0)} "
            f"| {cell(r.get('bytes'), 0)} | {cell(r.get('first'))} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss']:.0f} "
            f"| {cell(r.get('store_cpu'))} | {cell(r.get('at_once'), 1)} | {r.get('ops', '').replace(',', ', ')} |"
        )
    print()
    print("</details>")


def table_limit(runs, info):
    size, limit = int(info["size"]), int(info["limit"])
    header(
        info,
        f"Payload: {size / MIB:g} MiB ({size:,} bytes) of random bytes; `reelup upload "
        f"--limit-rate {info['limit_text']}` = {limit:,} bytes/s ({limit / MIB:.2f} MiB/s)",
    )
    print(
        "| run | OK | wall s | first part → Complete s | achieved MiB/s | error vs limit "
        "| bytes / wall, MiB/s | CPU s | peak RSS MiB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    errors = []
    for r in sorted(runs, key=lambda r: r["run"]):
        span = (
            r["complete_at"] - r["first"]
            if r.get("complete_at") is not None and r.get("first") is not None
            else None
        )
        achieved = size / span if span else None
        err = (achieved / limit - 1) * 100 if achieved else None
        if r["ok"] and err is not None:
            errors.append((err, span))
        print(
            f"| {r['run']} | {'yes' if r['ok'] else 'no'} | {r['wall']:.2f} | {cell(span)} "
            f"| {cell(achieved / MIB if achieved else None, 3)} "
            f"| {'' if err is None else f'{err:+.2f}%'} | {size / MIB / r['wall']:.3f} "
            f"| {r['cpu']:.2f} | {r['rss']:.0f} |"
        )
    print()
    print("Target: achieved rate within 3% of the limit, over at least 60 s.")
    print()
    if not errors:
        print("- cannot tell: no successful run with both log timestamps")
    for err, span in errors:
        long_enough = "" if span >= 60 else f" (but over {span:.0f} s, less than the 60 s asked)"
        if abs(err) <= 3:
            print(f"- {err:+.2f}% over {span:.0f} s: **met**{long_enough}")
        else:
            print(f"- {err:+.2f}% over {span:.0f} s: **missed**, {abs(err) - 3:.2f} points outside{long_enough}")
    print()
    print(
        "The span is from the first UploadPart reaching the store to the CompleteMultipartUpload "
        "reaching it (the store's log), so presigning before the first part and the store's "
        "Complete after the last are not counted against the rate."
    )
    failed_runs(runs)


def table(results_path, info_path):
    info = json.load(open(info_path))
    runs = [json.loads(line) for line in open(results_path) if line.strip()]
    {"1gib": table_1gib, "many": table_many, "limit": table_limit}[info["case"]](runs, info)


def main():
    cmd, *args = sys.argv[1:]
    {
        "presign": presign,
        "check": check,
        "delete": delete,
        "verify": verify,
        "delete-prefix": delete_prefix,
        "make-files": make_files,
        "storelog": storelog,
        "rate": rate,
        "record": record,
        "table": table,
    }[cmd](*args)


if __name__ == "__main__":
    main()
