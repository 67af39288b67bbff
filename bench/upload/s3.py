"""Helpers for bench/upload.sh: talk to the benchmark's store with boto3, and print the table.

  s3.py presign KEY          a presigned PUT URL for KEY (1 hour)
  s3.py check KEY SIZE       HEAD KEY; exit 1 unless it exists with exactly SIZE bytes
  s3.py delete KEY           remove KEY
  s3.py table RESULTS INFO   the Markdown report from the runs recorded in RESULTS (TSV)

The store comes from BENCH_S3, BENCH_BUCKET, BENCH_KEY_ID and BENCH_KEY_SECRET.
"""

import json
import os
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


def fmt_range(values, digits):
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def complete_cell(run):
    return "" if run["complete"] is None else f"{run['complete']:.2f}"


def table(results_path, info_path):
    info = json.load(open(info_path))
    runs = []
    with open(results_path) as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            tool, run, ok, wall, user, sys_, rss_kb, server_cpu, complete, note = fields
            runs.append(
                {
                    "tool": tool,
                    "run": int(run),
                    "ok": ok == "1",
                    "wall": float(wall or 0),
                    "cpu": float(user or 0) + float(sys_ or 0),
                    "rss": int(rss_kb or 0) / 1024,
                    "server_cpu": float(server_cpu or 0),
                    "complete": float(complete) if complete else None,
                    "note": note,
                }
            )
    size = info["size"]
    print()
    print(
        f"Machine: {info['nproc']} cores ({info['cpu']}), Linux {info['kernel']}, "
        f"{info['mem']} memory; load average {info['load_before']} before, "
        f"{info['load_after']} after"
    )
    print(f"Code: reelup {info['rev']}, release build")
    print(
        f"Payload: {size / MIB / 1024:g} GiB of random bytes from a warm page cache; "
        f"store: reelup-server --local (s3s-fs, SigV4 checked) on 127.0.0.1, same machine; "
        f"{info['runs']} run(s) per tool, medians with (min–max) of successful runs"
    )
    print()
    print(
        "| tool | settings | OK runs | wall s | CPU s (user+sys) | peak RSS MiB "
        "| MiB/s | store CPU s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    med = {}
    for tool in info["tools"]:
        name, settings = tool["name"], tool["settings"]
        good = [r for r in runs if r["tool"] == name and r["ok"]]
        total = sum(1 for r in runs if r["tool"] == name)
        if not good:
            print(f"| {name} | {settings} | 0 of {total} | failed | | | | |")
            continue
        walls = [r["wall"] for r in good]
        cpus = [r["cpu"] for r in good]
        rsss = [r["rss"] for r in good]
        med[name] = {
            "wall": statistics.median(walls),
            "cpu": statistics.median(cpus),
            "rss": statistics.median(rsss),
        }
        rate = size / MIB / med[name]["wall"]
        print(
            f"| {name} | {settings} | {len(good)} of {total} | {fmt_range(walls, 2)} "
            f"| {fmt_range(cpus, 2)} | {fmt_range(rsss, 0)} | {rate:,.0f} "
            f"| {statistics.median(r['server_cpu'] for r in good):.2f} |"
        )

    print()
    print("Targets (medians):")
    print()

    def target(label, num, den, limit, what):
        if num not in med or den not in med:
            print(f"- {label}: cannot tell, {num if num not in med else den} had no successful run")
            return
        ratio = med[num][what] / med[den][what]
        if ratio <= limit:
            verdict = f"**met** ({(1 - ratio / limit) * 100:.0f}% under the limit)"
        else:
            verdict = f"**missed**, {(ratio / limit - 1) * 100:.0f}% over the limit"
        print(f"- {label}: {ratio:.2f}x (target <= {limit}x): {verdict}")

    target("reelup wall / curl wall", "reelup upload", "curl -T (presigned PUT)", 1.2, "wall")
    target("reelup CPU / aws-cli CPU", "reelup upload", "aws s3 cp", 0.5, "cpu")
    target("reelup peak RSS / aws-cli peak RSS", "reelup upload", "aws s3 cp", 0.5, "rss")

    reelup = [r for r in runs if r["tool"] == "reelup upload" and r["ok"] and r["complete"]]
    curl = med.get("curl -T (presigned PUT)")
    if reelup:
        complete = statistics.median(r["complete"] for r in reelup)
        parts = statistics.median(r["wall"] - r["complete"] for r in reelup)
        print()
        print(
            f"Where reelup's wall time goes (medians, from the server's request log): "
            f"{complete:.2f} s in the store's CompleteMultipartUpload (s3s-fs re-reads, MD5s and "
            f"copies every part into the final file; aws and rclone wait for the same step), "
            f"{parts:.2f} s for everything before it (presigning, reading and sending the parts)"
            + (f", {parts / curl['wall']:.2f}x curl's single PUT." if curl else ".")
        )

    failed = [r for r in runs if not r["ok"]]
    if failed:
        print()
        print("Failed runs (not counted):")
        print()
        for r in failed:
            print(f"- {r['tool']} run {r['run']}: {r['note']}")

    print()
    print("<details><summary>Every run</summary>")
    print()
    print("| tool | run | OK | wall s | CPU s | peak RSS MiB | store CPU s | Complete s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in sorted(runs, key=lambda r: (r["tool"], r["run"])):
        print(
            f"| {r['tool']} | {r['run']} | {'yes' if r['ok'] else 'no'} | {r['wall']:.2f} "
            f"| {r['cpu']:.2f} | {r['rss']:.0f} | {r['server_cpu']:.2f} | {complete_cell(r)} |"
        )
    print()
    print("</details>")


def main():
    cmd, *args = sys.argv[1:]
    {"presign": presign, "check": check, "delete": delete, "table": table}[cmd](*args)


if __name__ == "__main__":
    main()
