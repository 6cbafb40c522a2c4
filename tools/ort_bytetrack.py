#!/usr/bin/env python3
"""The anchor `vitrine eval` compares against: what a user would assemble in an afternoon.

YOLOX-nano (416x416 letterbox, the float ONNX file Vitrine uses) in onnxruntime on one thread,
supervision's ByteTrack (default parameters, frame rate = the analysis rate) and LineZone
(bottom-centre anchor) per counting line. Frames: OpenCV decodes the whole video; native frame i
is analysed when it is the k-th one ffmpeg's `fps` filter (Vitrine's decoder) keeps:
i = ceil((k + 1/2)·native/fps) - 1, the last frame before the middle of the k-th interval.

Usage: ort_bytetrack.py SPEC.json, where SPEC holds
  {"model", "video", "fps", "tracks_out", "lines": [{"id", "from": [x, y], "to": [x, y], "in": "left"|"right"}]}
(normalized coordinates, Vitrine's conventions). Writes the tracks, MOT-style
(frame,id,x,y,w,h,score,-1,-1,-1; frame = the video's own frame number, 1-based), to
`tracks_out` and prints one JSON object: frames analysed, CPU seconds (process time from the
first frame to the last: decoding, preprocessing, inference, tracking, counting) and in/out
per line, with "in" meaning Vitrine's in side.

Pinned in tools/setup-venv.sh: onnxruntime 1.32.0, supervision 0.26.1, opencv-python 5.0.0.93.
"""
import json
import math
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort
import supervision as sv

SIZE = 416
STRIDES = (8, 16, 32)


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
    tracker = sv.ByteTrack(frame_rate=int(round(fps)))
    zones = []
    for l in spec["lines"]:
        a = sv.Point(l["from"][0] * w, l["from"][1] * h)
        b = sv.Point(l["to"][0] * w, l["to"][1] * h)
        zones.append((l, sv.LineZone(start=a, end=b, triggering_anchors=[sv.Position.BOTTOM_CENTER])))
    anchors = grid()
    out = open(spec["tracks_out"], "w")
    cpu0 = time.process_time()
    i, k, frames = 0, 0, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        i += 1
        if i - 1 != math.ceil((k + 0.5) * native / fps) - 1:
            continue
        k += 1
        frames += 1
        tracks = tracker.update_with_detections(detect(sess, frame, anchors))
        for _, z in zones:
            z.trigger(tracks)
        for (x1, y1, x2, y2), tid, s in zip(tracks.xyxy, tracks.tracker_id, tracks.confidence):
            out.write(f"{i},{tid},{x1:.1f},{y1:.1f},{x2 - x1:.1f},{y2 - y1:.1f},{s:.3f},-1,-1,-1\n")
    cpu = time.process_time() - cpu0
    out.close()
    # supervision counts "in" when the anchor moves to the line's left (negative cross product,
    # Vitrine's Left); Vitrine's in side may be either.
    lines = {}
    for l, z in zones:
        a, b = z.in_count, z.out_count
        lines[l["id"]] = {"in": a, "out": b} if l["in"] == "left" else {"in": b, "out": a}
    print(json.dumps({"frames": frames, "cpu_s": cpu, "lines": lines}))


if __name__ == "__main__":
    main()
