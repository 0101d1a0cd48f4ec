#!/usr/bin/env python3
"""Times several commands in interleaved rounds: round 1 runs each command once, then round 2,
and so on, so that a change in the machine's load during the run hits every command alike
(hyperfine runs all runs of one command before the next). Each run is preceded by its
untimed prepare command (a fresh database). One more round runs first and is not recorded,
as hyperfine's --warmup: the first run of each command pays for cold caches (binary, files,
the server's catalog caches) unequally.

Usage: bench-rounds.py ROUNDS OUTDIR SPEC.json
SPEC.json: [{"key": ..., "prepare": "shell", "command": "shell"}, ...]
Writes OUTDIR/KEY.json in hyperfine's export shape ({"results": [{"median", "min", "max",
"times"}]}), or OUTDIR/KEY.failed with the failing run's output.
"""

import json
import os
import statistics
import subprocess
import sys
import time


def main():
    rounds, outdir, spec_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with open(spec_path) as f:
        spec = json.load(f)
    times = {s["key"]: [] for s in spec}
    failed = set()
    for r in range(-1, rounds):
        for s in spec:
            key = s["key"]
            if key in failed:
                continue
            if s.get("prepare"):
                subprocess.run(s["prepare"], shell=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False)
            start = time.perf_counter()
            run = subprocess.run(s["command"], shell=True, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, check=False)
            elapsed = time.perf_counter() - start
            if run.returncode != 0:
                failed.add(key)
                with open(os.path.join(outdir, key + ".failed"), "w") as f:
                    f.write(run.stderr.decode(errors="replace")[-2000:])
                print(f"bench: {key} failed (exit {run.returncode})", file=sys.stderr)
                continue
            if r < 0:
                continue
            times[key].append(elapsed)
        if r < 0:
            print("bench: warm-up round done (not recorded)", file=sys.stderr)
            continue
        print(f"bench: round {r + 1}/{rounds}: " + ", ".join(
            f"{k} {v[-1]:.2f} s" for k, v in times.items() if v and k not in failed
        ), file=sys.stderr)
    for key, ts in times.items():
        if key in failed or not ts:
            continue
        with open(os.path.join(outdir, key + ".json"), "w") as f:
            json.dump({"results": [{
                "command": key,
                "median": statistics.median(ts),
                "min": min(ts),
                "max": max(ts),
                "times": ts,
            }]}, f)


if __name__ == "__main__":
    main()
