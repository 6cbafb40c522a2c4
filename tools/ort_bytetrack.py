#!/usr/bin/env python3
"""The anchors `vitrine-lab eval` compares against: what a user would assemble in an afternoon.

YOLOX-nano (416x416 letterbox, the float ONNX file Vitrine uses) in onnxruntime on one thread,
then, on the very same detections, one or more trackers, each with supervision's LineZone
(bottom-centre anchor) per counting line:
  - "ort+bytetrack": supervision's ByteTrack (default parameters, frame rate = the analysis
    rate) -- the anchor of the speed comparison;
  - with BoxMOT installed (tools/setup-venv.sh --boxmot), "ort+ocsort", "ort+botsort",
    "ort+hybridsort", "ort+deepocsort": BoxMOT's trackers at their shipped defaults
    (frame rate = the analysis rate), without re-identification weights (BoT-SORT, Hybrid-SORT
    and Deep OC-SORT are run with embeddings off; StrongSORT needs OSNet weights from Google
    Drive, which cannot be had here, and is not run).
Frames: OpenCV decodes the whole video; native frame i is analysed when it is the k-th one
ffmpeg's `fps` filter (Vitrine's decoder) keeps: i = ceil((k + 1/2)·native/fps) - 1, the last
frame before the middle of the k-th interval.

Usage: ort_bytetrack.py SPEC.json, where SPEC holds
  {"model", "video", "fps", "out_dir", "trackers": ["bytetrack", ...],
   "lines": [{"id", "from": [x, y], "to": [x, y], "in": "left"|"right", "timed": bool}]}
(normalized coordinates, Vitrine's conventions; "timed": false for lines whose counting is
left out of the CPU time -- the suite's dense grid, which a user would not draw). Writes each
pipeline's tracks, MOT-style (frame,id,x,y,w,h,score,-1,-1,-1; frame = the video's own frame
number, 1-based), to out_dir/NAME.txt and prints one JSON object: frames analysed and, per
pipeline, CPU seconds (process time from the first frame to the last: decoding,
preprocessing, inference, tracking, counting the timed lines), in/out per line (with "in"
meaning Vitrine's in side) and each crossing's frame and direction.

Pinned in tools/setup-venv.sh: onnxruntime 1.32.0, supervision 0.26.1, opencv-python (5.0.0.93;
4.x in the BoxMOT venv), boxmot 25.0.0.
"""
import json
import math
import os
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv

SIZE = 416
STRIDES = (8, 16, 32)
BOXMOT = ("ocsort", "botsort", "hybridsort", "deepocsort")


def grid():
    g = []
    for s in STRIDES:
        n = SIZE // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        g.append(np.stack([xs.ravel(), ys.ravel(), np.full(n * n, s)], axis=1))
    return np.concatenate(g).astype(np.float32)


def detect(sess, frame, anchors):
    h, w = frame.shape[:2]
    r = min(SIZE / w, SIZE / h)
    img = np.full((SIZE, SIZE, 3), 114, np.uint8)
    img[: int(round(h * r)), : int(round(w * r))] = cv2.resize(frame, (int(round(w * r)), int(round(h * r))))
    x = img.transpose(2, 0, 1)[None].astype(np.float32)  # OpenCV frames are BGR already
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]
    scores = out[:, 4] * out[:, 5]  # objectness x person
    keep = scores >= 0.1
    out, scores, a = out[keep], scores[keep], anchors[keep]
    cx = (out[:, 0] + a[:, 0]) * a[:, 2] / r
    cy = (out[:, 1] + a[:, 1]) * a[:, 2] / r
    bw = np.exp(out[:, 2]) * a[:, 2] / r
    bh = np.exp(out[:, 3]) * a[:, 2] / r
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    dets = sv.Detections(xyxy=xyxy, confidence=scores, class_id=np.zeros(len(scores), int))
    return dets.with_nms(threshold=0.45)


class Supervision:
    """supervision's ByteTrack."""

    def __init__(self, fps):
        self.t = sv.ByteTrack(frame_rate=int(round(fps)))

    def update(self, dets, frame):
        return self.t.update_with_detections(dets)


class BoxMot:
    """A BoxMOT tracker at its shipped defaults, embeddings off, at the analysis rate."""

    def __init__(self, name, fps):
        from boxmot import create_tracker
        from boxmot.trackers.specs import TrackerSpec

        opts = [("frame_rate", int(round(fps)))] if name in ("botsort",) else []
        if name in ("botsort", "hybridsort", "deepocsort"):
            opts.append(("use_embeddings", False))
        self.t = create_tracker(TrackerSpec(name, options=tuple(opts)))

    def update(self, dets, frame):
        d = np.concatenate(
            [dets.xyxy, dets.confidence[:, None], np.zeros((len(dets), 1))], axis=1
        ).astype(np.float32)
        out = self.t.update(d, frame)
        if len(out) == 0:
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=out[:, :4].astype(np.float32),
            tracker_id=out[:, 4].astype(int),
            confidence=out[:, 5].astype(np.float32),
            class_id=np.zeros(len(out), int),
        )


class Pipeline:
    def __init__(self, name, tracker, spec, w, h, out_dir):
        self.name, self.tracker = name, tracker
        self.zones = []
        for l in spec["lines"]:
            a = sv.Point(l["from"][0] * w, l["from"][1] * h)
            b = sv.Point(l["to"][0] * w, l["to"][1] * h)
            zone = sv.LineZone(start=a, end=b, triggering_anchors=[sv.Position.BOTTOM_CENTER])
            self.zones.append((l, zone, []))
        self.cpu = 0.0
        self.out = open(os.path.join(out_dir, name + ".txt"), "w")

    def step(self, i, dets, frame):
        t0 = time.process_time()
        tracks = self.tracker.update(dets, frame)
        untimed = 0.0
        for l, z, crossings in self.zones:
            u0 = time.process_time()
            came_in, went_out = z.trigger(tracks)
            # supervision's "in" is the anchor moving to the line's left (Vitrine's Left).
            for came in came_in:
                if came:
                    crossings.append([i, l["in"] == "left"])
            for went in went_out:
                if went:
                    crossings.append([i, l["in"] != "left"])
            if not l.get("timed", True):
                untimed += time.process_time() - u0
        self.cpu += time.process_time() - t0 - untimed
        if len(tracks) == 0:
            return
        for (x1, y1, x2, y2), tid, s in zip(tracks.xyxy, tracks.tracker_id, tracks.confidence):
            self.out.write(f"{i},{tid},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},{s:.3f},-1,-1,-1\n")

    def summary(self, shared_cpu):
        self.out.close()
        lines, crossings = {}, {}
        for l, z, cs in self.zones:
            a, b = z.in_count, z.out_count
            lines[l["id"]] = {"in": a, "out": b} if l["in"] == "left" else {"in": b, "out": a}
            crossings[l["id"]] = cs
        return {"cpu_s": shared_cpu + self.cpu, "lines": lines, "crossings": crossings}


def main():
    spec = json.load(open(sys.argv[1]))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(spec["model"], so, providers=["CPUExecutionProvider"])
    cap = cv2.VideoCapture(spec["video"])
    native = cap.get(cv2.CAP_PROP_FPS) or 25.0
    w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    fps = min(float(spec["fps"]), native)
    pipelines = []
    for name in spec.get("trackers", ["bytetrack"]):
        tracker = Supervision(fps) if name == "bytetrack" else BoxMot(name, fps)
        pipelines.append(Pipeline("ort+" + name, tracker, spec, w, h, spec["out_dir"]))
    anchors = grid()
    shared = 0.0
    i, k, frames = 0, 0, 0
    t = time.process_time()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        i += 1
        if i - 1 != math.ceil((k + 0.5) * native / fps) - 1:
            continue
        k += 1
        frames += 1
        dets = detect(sess, frame, anchors)
        now = time.process_time()
        shared += now - t
        for p in pipelines:
            p.step(i, dets, frame)
        t = time.process_time()
    shared += time.process_time() - t
    out = {p.name: p.summary(shared) for p in pipelines}
    print(json.dumps({"frames": frames, "pipelines": out}))


if __name__ == "__main__":
    main()
