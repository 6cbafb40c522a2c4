#!/usr/bin/env python3
"""Quantize a pinned float ONNX model to int8 (QDQ, per-channel weights) calibrated on real
frames, and verify it against its float parent on held-out frames of the same media.

usage: tools/quantize.py MODEL [--models DIR] [--media DIR] [--out DIR] [--report FILE]
  MODEL: yolox-nano | person-lw | yunet   (detectors: the outputs are decoded and compared as
         detections; tract and onnxruntime run the result)

Calibration: the first three quarters of the video (default Debian's vtest.avi; --video for
faces), at most 100 frames; held out: at most 40 frames of the last quarter. For each held-out frame both models' detections are decoded
(the agent's threshold and NMS) and matched at IoU >= 0.5: recall and precision of the int8
model *against the float model*, plus the largest absolute output difference.

Known tract pitfalls handled here (../shared/models/README.md): Softmax nodes are excluded
(tract 0.23 computes DequantizeLinear -> Softmax -> QuantizeLinear as 1.0 everywhere); only
QDQ is produced (onnxruntime's QOperator format emits com.microsoft ops tract lacks).
Deterministic: same inputs, same onnxruntime version -> same file (the sha256 is printed).
"""
import argparse, hashlib, json, os, subprocess, sys, time
import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
import onnxruntime as ort

MODELS = {
    # name: (file, input size, kind, pad)
    "yolox-nano": ("yolox_nano.onnx", 416, "yolox", 114.0),
    "person-lw": ("person_lw.onnx", 192, "yolox", 114.0),
    "yunet": ("yunet_n_320_320.onnx", 320, "yunet", 0.0),
}
THRESHOLD = {"yolox": 0.35, "yunet": 0.6}


def frames(video, first, last, step):
    w, h = map(int, subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                    "stream=width,height", "-of", "csv=p=0", video],
                                   check=True, capture_output=True, text=True).stdout.strip().split(",")[:2])
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", video, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    n = len(raw) // (w * h * 3)
    arr = np.frombuffer(raw, np.uint8)[: n * w * h * 3].reshape(n, h, w, 3)
    return [arr[i] for i in range(first, min(last, n), step)]


def letterbox(rgb, size, pad):
    """The agent's letterbox_bgr: aspect kept, top-left, bilinear, BGR planes, 0..255."""
    h, w, _ = rgb.shape
    s = min(size / w, size / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    xs = np.clip((np.arange(nw) + 0.5) / s - 0.5, 0, w - 1)
    ys = np.clip((np.arange(nh) + 0.5) / s - 0.5, 0, h - 1)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (xs - x0)[None, :, None], (ys - y0)[:, None, None]
    f = rgb.astype(np.float32)
    top = f[y0][:, x0] * (1 - fx) + f[y0][:, x1] * fx
    bot = f[y1][:, x0] * (1 - fx) + f[y1][:, x1] * fx
    img = top * (1 - fy) + bot * fy
    out = np.full((3, size, size), pad, np.float32)
    out[:, :nh, :nw] = img[:, :, ::-1].transpose(2, 0, 1)
    return out[None], s


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def nms(dets, thr):
    keep = []
    for d in sorted(dets, key=lambda d: -d[4]):
        if all(iou(d, k) <= thr for k in keep):
            keep.append(d)
    return keep


def decode(kind, size, outs, scale):
    dets = []
    if kind == "yolox":
        out = outs[0][0]
        grid = [(x, y, s) for s in (8, 16, 32) for y in range(size // s) for x in range(size // s)]
        for row, (gx, gy, s) in zip(out, grid):
            score = row[4] * row[5]
            if score < THRESHOLD[kind]:
                continue
            cx, cy = (row[0] + gx) * s / scale, (row[1] + gy) * s / scale
            w, h = np.exp(row[2]) * s / scale, np.exp(row[3]) * s / scale
            dets.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, float(score)))
        return nms(dets, 0.45)
    for k, s in enumerate((8, 16, 32)):
        cls, obj, box = outs[k][0, :, 0], outs[3 + k][0, :, 0], outs[6 + k][0]
        cols = size // s
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        for i in np.nonzero(score >= THRESHOLD[kind])[0]:
            c, r = i % cols, i // cols
            cx, cy = (c + box[i, 0]) * s / scale, (r + box[i, 1]) * s / scale
            w, h = np.exp(box[i, 2]) * s / scale, np.exp(box[i, 3]) * s / scale
            dets.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, float(score[i])))
    return nms(dets, 0.3)


class Reader(CalibrationDataReader):
    def __init__(self, name, inputs):
        self.it = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self.it, None)


def float_convs(m):
    """The convolutions a mixed-precision int8 model keeps in float: depthwise ones (tract has
    no fast int8 depthwise path), the stem (3 input channels: little work, much error) and the
    prediction convolutions (few output channels: box, objectness and class scores)."""
    weights = {t.name: t.dims for t in m.graph.initializer}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    keep = []
    for i, n in enumerate(convs):
        group = next((at.i for at in n.attribute if at.name == "group"), 1)
        dims = weights.get(n.input[1], [0, 0])
        if group > 1 or i == 0 or dims[1] <= 3 or dims[0] <= 4 or dims[0] == 80:
            keep.append(n.name)
    return keep


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("--models", default=".cache/models")
    ap.add_argument("--media", default=".cache/media")
    ap.add_argument("--out", default=".cache/models")
    ap.add_argument("--video", help="calibration/held-out video (default: MEDIA/vtest.avi; faces need a video with faces)")
    ap.add_argument("--calibration", default="minmax", choices=["minmax", "percentile", "entropy"])
    ap.add_argument("--report", help="append a JSON line with the verification figures")
    ap.add_argument("--format", default="qdq", choices=["qdq", "qoperator"],
                    help="qdq (default): QuantizeLinear/DequantizeLinear around float ops, which tract runs "
                         "in float; qoperator: QLinearConv, which reaches tract's integer kernels. qoperator "
                         "quantizes only the dense convolutions (mixed precision: depthwise, the stem and the "
                         "prediction convolutions stay f32; symmetric int8 weights)")
    a = ap.parse_args()
    file, size, kind, pad = MODELS[a.model]
    src = os.path.join(a.models, file)
    dst = os.path.join(a.out, file.replace(".onnx", ".int8.onnx"))
    video = a.video or os.path.join(a.media, "vtest.avi")
    allf = frames(video, 0, 10**6, 1)
    cut = len(allf) * 3 // 4
    # First three quarters calibrate (at most 100 frames), the last quarter is held out (at most 40).
    calib = [letterbox(f, size, pad)[0] for f in allf[:cut][:: max(1, -(-cut // 100))]]
    held = allf[cut:][:: max(1, -(-(len(allf) - cut) // 40))]
    m = onnx.load(src)
    inp = m.graph.input[0].name
    # Softmax stays float (the tract bug above).
    exclude = [n.name for n in m.graph.node if n.op_type == "Softmax"]
    ops = None
    if a.format == "qoperator":
        ops = ["Conv"]
        exclude += float_convs(m)
    # Per-channel QDQ needs opset >= 13.
    if max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) < 13:
        m = onnx.version_converter.convert_version(m, 13)
        tmp = dst + ".opset13.onnx"
        onnx.save(m, tmp)
        src_q = tmp
    else:
        src_q = src
    t0 = time.time()
    fmt = QuantFormat.QOperator if a.format == "qoperator" else QuantFormat.QDQ
    quantize_static(src_q, dst, Reader(inp, calib), quant_format=fmt, op_types_to_quantize=ops,
                    extra_options={"WeightSymmetric": True},
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True, calibrate_method={"minmax": CalibrationMethod.MinMax,
                                      "percentile": CalibrationMethod.Percentile,
                                      "entropy": CalibrationMethod.Entropy}[a.calibration],
                    nodes_to_exclude=exclude)
    if src_q != src:
        os.remove(src_q)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    f32 = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    i8 = ort.InferenceSession(dst, so, providers=["CPUExecutionProvider"])
    tp = fn = fp = 0
    maxdiff = 0.0
    for fr in held:
        x, scale = letterbox(fr, size, pad)
        a_out, b_out = f32.run(None, {inp: x}), i8.run(None, {inp: x})
        maxdiff = max(maxdiff, max(float(np.abs(p - q).max()) for p, q in zip(a_out, b_out)))
        ref, got = decode(kind, size, a_out, scale), decode(kind, size, b_out, scale)
        used = set()
        for r in ref:
            best = max(((iou(r, g), j) for j, g in enumerate(got) if j not in used), default=(0, None))
            if best[0] >= 0.5:
                used.add(best[1]); tp += 1
            else:
                fn += 1
        fp += len(got) - len(used)
    recall = tp / max(tp + fn, 1)
    precision = tp / max(tp + fp, 1)
    ok = recall >= 0.9 and precision >= 0.9
    res = {"model": a.model, "int8": os.path.basename(dst), "sha256": sha256(dst),
           "calibration_frames": len(calib), "held_out_frames": len(held), "float_detections": tp + fn,
           "recall_vs_float": round(recall, 3), "precision_vs_float": round(precision, 3),
           "max_abs_output_diff": round(maxdiff, 3), "passes": ok, "calibration": a.calibration, "format": a.format, "onnxruntime": ort.__version__,
           "seconds": round(time.time() - t0, 1)}
    print(json.dumps(res))
    # The verification record beside the int8 file: the agent reads it ([models] precision =
    # "auto" / "int8") and refuses an int8 file whose sha256 differs or that did not pass.
    with open(dst.replace(".onnx", ".json"), "w") as f:
        json.dump(res, f, indent=1)
    if a.report:
        with open(a.report, "a") as f:
            f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
