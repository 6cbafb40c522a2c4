#!/usr/bin/env python3
"""Line-count accuracy against MOT-style ground truth.

usage: eval-lines.py CONFIG.toml GT.txt WIDTH HEIGHT EVENTS.jsonl [CAMERA_ID]

Ground-truth crossings are computed from the annotated boxes (foot = bottom-centre) with the
agent's rule: a side counts only beyond the dead band (0.02 of the image), and a change of side
is a crossing if the path between the two sightings intersects the line (extended 5 %).
The agent's counts are the sums over the replay's window events. Prints a table per line."""
import json, sys, tomllib, collections

DEADBAND, EXT = 0.02, 0.05

def side(p, a, b):
    dx, dy = b[0] - a[0], b[1] - a[1]
    d = (dx * (p[1] - a[1]) - dy * (p[0] - a[0])) / max((dx * dx + dy * dy) ** 0.5, 1e-6)
    return None if abs(d) < DEADBAND else ("left" if d < 0 else "right")

def orient(a, b, c):
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])

def intersect(p1, p2, q1, q2):
    return orient(q1, q2, p1) * orient(q1, q2, p2) <= 0 and orient(p1, p2, q1) * orient(p1, p2, q2) <= 0

def main():
    cfg_path, gt_path, w, h, events_path = sys.argv[1:6]
    cam_id = sys.argv[6] if len(sys.argv) > 6 else None
    w, h = float(w), float(h)
    cfg = tomllib.load(open(cfg_path, "rb"))
    cam = next(c for c in cfg["cameras"] if cam_id in (None, c["id"]))
    tracks = collections.defaultdict(list)
    for line in open(gt_path):
        f, i, x, y, bw, bh = [float(v) for v in line.split(",")[:6]]
        tracks[int(i)].append((int(f), ((x + bw / 2) / w, (y + bh) / h)))
    got = collections.Counter()
    for ev in map(json.loads, open(events_path)):
        for l in ev.get("lines", []):
            got[(l["id"], "in")] += l["in"] or 0
            got[(l["id"], "out")] += l["out"] or 0
    print(f"{'line':<16} {'gt in':>6} {'got in':>7} {'gt out':>7} {'got out':>8} {'abs err':>8}")
    tot_gt = tot_err = 0
    for l in cam.get("lines", []):
        a, b = l["from"], l["to"]
        ext_a = (a[0] - (b[0] - a[0]) * EXT, a[1] - (b[1] - a[1]) * EXT)
        ext_b = (b[0] + (b[0] - a[0]) * EXT, b[1] + (b[1] - a[1]) * EXT)
        gt = collections.Counter()
        for pts in tracks.values():
            last = None
            for _, p in sorted(pts):
                s = side(p, a, b)
                if s is None:
                    continue
                if last and last[0] != s and intersect(last[1], p, ext_a, ext_b):
                    gt["in" if s == l["in"] else "out"] += 1
                last = (s, p)
        err = abs(gt["in"] - got[(l["id"], "in")]) + abs(gt["out"] - got[(l["id"], "out")])
        tot_gt += gt["in"] + gt["out"]
        tot_err += err
        print(f"{l['id']:<16} {gt['in']:>6} {got[(l['id'], 'in')]:>7} {gt['out']:>7} {got[(l['id'], 'out')]:>8} {err:>8}")
    print(f"total ground-truth crossings {tot_gt}, absolute count error {tot_err}"
          + (f" ({100 * tot_err / tot_gt:.0f} %)" if tot_gt else ""))

main()
