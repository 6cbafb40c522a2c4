#!/usr/bin/env python3
"""The power-cut rig's verdict (scripts/powercut.sh).

  powercut-check.py last-end WIRE        the latest window end on the wire (Unix seconds; 0)
  powercut-check.py report DIR CUTS      check every boot's log and the wire; exit 1 on a fault

The wire log is mosquitto_sub -v: one `topic payload` line per message the broker accepted,
that is, per PUBACK the agent received.
"""
import datetime
import glob
import json
import os
import re
import sys

EVENT_KINDS = ("window", "alert", "forecast", "audit", "gap", "config")
REQUIRED = ("schema", "device_id", "store_id", "seq", "idempotency_key")


def messages(wire):
    with open(wire, "rb") as f:
        for raw in f:
            topic, _, payload = raw.rstrip(b"\n").partition(b" ")
            yield topic.decode(errors="replace"), payload


def is_event(topic):
    parts = topic.split("/")
    return len(parts) >= 4 and parts[3] in EVENT_KINDS and not topic.endswith("/config/set")


def seconds(rfc3339):
    return int(datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp())


def last_end(wire):
    end = 0
    if os.path.exists(wire):
        for topic, payload in messages(wire):
            if "/window/" in topic:
                try:
                    end = max(end, seconds(json.loads(payload)["window"]["end"]))
                except (ValueError, KeyError, TypeError):
                    pass
    print(end)


def check_wire(wire, faults):
    by_seq, corrupt, gaps, kinds = {}, 0, [], {}
    for topic, payload in messages(wire):
        if not is_event(topic):
            continue
        try:
            event = json.loads(payload)
            missing = [k for k in REQUIRED if k not in event]
            if missing:
                raise ValueError(f"fields {missing} missing")
        except ValueError as e:
            corrupt += 1
            faults.append(f"corrupt record on {topic}: {e}: {payload[:120]!r}")
            continue
        seq = event["seq"]
        kind = topic.split("/")[3]
        kinds[kind] = kinds.get(kind, 0) + 1
        if kind == "gap":
            gaps.append((event["lost"]["from_seq"], event["lost"]["to_seq"]))
        by_seq.setdefault(seq, set()).add(payload)
    deliveries = sum(kinds.values())
    reused = [s for s, p in by_seq.items() if len(p) > 1]
    for s in reused:
        faults.append(f"seq {s} delivered with {len(by_seq[s])} different contents")
    top = max(by_seq, default=0)
    missing = [
        s for s in range(1, top + 1)
        if s not in by_seq and not any(a <= s <= b for a, b in gaps)
    ]
    if missing:
        faults.append(f"{len(missing)} stored events never delivered: seqs {missing[:20]}")
    return {
        "events": len(by_seq),
        "deliveries": deliveries,
        "resent": deliveries - len(by_seq),
        "corrupt": corrupt,
        "reused": len(reused),
        "lost": len(missing),
        "gaps": len(gaps),
        "kinds": kinds,
    }


def check_boot(path, known, faults, tally):
    text = open(path, errors="replace").read()
    name = os.path.basename(path)

    def line(tag):
        m = re.search(rf"^{tag} (.*)$", text, re.M)
        return m.group(1) if m else None

    if "PC-MOUNT-FAILED" in text or "PC-ROOT-FAILED" in text or line("PC-FSCK") is None:
        faults.append(f"{name}: the data disk did not mount")
        return
    if line("PC-FSCK") != "rc=0":
        tally["fsck"] += 1
        says = "; ".join(re.findall(r"^PC-FSCK-SAYS (.*)$", text, re.M))[:300]
        faults.append(f"{name}: e2fsck after the cut: {line('PC-FSCK')} {says}")
    if line("PC-CONFIG") not in known:
        tally["torn"] += 1
        faults.append(f"{name}: agent.toml is none of the files written whole")
    if line("PC-CHECK") != "rc=0":
        tally["torn"] += 1
        faults.append(f"{name}: check-config refused agent.toml")
    for tag, what in (("PC-FORECAST", "forecast.json"), ("PC-REMOTE", "remote-config.json")):
        body = line(tag)
        if body is None:
            continue
        tally[what] += 1
        if what == "forecast.json":
            tally["forecasts"].add(body)
        try:
            json.loads(body)
        except ValueError:
            tally["torn"] += 1
            faults.append(f"{name}: {what} is not whole JSON")
    if "PC-TRIAL-MARKER" in text:
        tally["trials"] += 1
    if "PC-AGENT-STARTED" not in text:
        faults.append(f"{name}: the agent was not started")
    if "pipeline running" in text and "outbox opened" not in text:
        faults.append(f"{name}: the pipeline ran without the outbox opening")
    exit_line = line("PC-AGENT-EXIT")
    if exit_line is not None and exit_line != "rc=0":
        faults.append(f"{name}: the agent stopped with {exit_line}")
    for bad in re.findall(r"^\[agent\] .*(?:panicked|ERROR).*$", text, re.M)[:3]:
        faults.append(f"{name}: {bad[:200]}")


def report(wdir, cuts):
    faults = []
    known = set(open(os.path.join(wdir, "known.txt")).read().split())
    tally = {"fsck": 0, "torn": 0, "forecast.json": 0, "remote-config.json": 0,
             "forecasts": set(), "trials": 0}
    boots = sorted(glob.glob(os.path.join(wdir, "boot-*.log")))
    for b in boots:
        check_boot(b, known, faults, tally)
    final = open(boots[-1], errors="replace").read() if boots else ""
    if "PC-FINAL-DONE" not in final:
        faults.append("the last boot did not stop cleanly")
    if "PC-UMOUNT-FAILED" in final:
        faults.append("the data disk could not be unmounted after the clean stop")
    if "PC-FINAL-FSCK rc=0" not in final:
        faults.append("e2fsck after the clean stop did not pass")
    wire = check_wire(os.path.join(wdir, "wire.log"), faults)
    kept = lost = 0
    for d in glob.glob(os.path.join(wdir, "disk-*.txt")):
        m = re.search(r"kept=(\d+) lost=(\d+)", open(d).read())
        if m:
            kept, lost = kept + int(m.group(1)), lost + int(m.group(2))
    results = []
    for topic, payload in messages(os.path.join(wdir, "wire.log")):
        if topic.endswith("/config/result"):
            try:
                results.append(json.loads(payload).get("status", "?"))
            except ValueError:
                pass
    print(f"power cuts: {cuts}, boots: {len(boots)} (the last stopped cleanly)")
    print(f"unflushed sectors at the cuts: {kept} reached the disk, {lost} were lost")
    print(
        f"events stored and delivered: {wire['events']} ({wire['kinds']}); "
        f"deliveries {wire['deliveries']}, re-sent after a cut {wire['resent']}"
    )
    print(
        f"acknowledged events lost: {wire['lost']}; corrupt records: {wire['corrupt']}; "
        f"seqs reused: {wire['reused']}; gap records: {wire['gaps']}"
    )
    print(
        f"torn files: {tally['torn']} (agent.toml checked {len(boots)} times, "
        f"forecast.json {tally['forecast.json']} ({len(tally['forecasts'])} distinct versions), "
        f"remote-config.json {tally['remote-config.json']}); filesystems not clean: {tally['fsck']}; "
        f"boots that found an apply on trial: {tally['trials']}; config results: {results}"
    )
    if cuts >= 10 and not tally["forecasts"]:
        faults.append("no boot found a forecast history: its rewrites were never cut")
    if faults:
        print("FAULTS:")
        for f in faults:
            print("  " + f)
        sys.exit(1)
    print("powercut ok")


if __name__ == "__main__":
    if sys.argv[1] == "last-end":
        last_end(sys.argv[2])
    else:
        report(sys.argv[2], int(sys.argv[3]))
