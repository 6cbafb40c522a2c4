#!/usr/bin/env python3
"""onnxruntime latency (1 thread, median of N runs) of the models in a spec written by
`vitrine-lab bench models`: [{"name", "variant", "path", "inputs": [{"name"?, "shape", "file"}]}].
Inputs are raw little-endian f32 files made by the Rust side (the same tensors tract ran).
Prints one JSON line per model: {"name", "variant", "ms"} or {"name", "variant", "error"}."""
import json, sys, time
import numpy as np
import onnxruntime as ort

spec = json.load(open(sys.argv[1]))
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
so = ort.SessionOptions()
so.intra_op_num_threads = 1
so.inter_op_num_threads = 1
for m in spec:
    try:
        s = ort.InferenceSession(m["path"], so, providers=["CPUExecutionProvider"])
        feed = {}
        for decl, i in zip(s.get_inputs(), m["inputs"]):
            feed[decl.name] = np.fromfile(i["file"], dtype="<f4").reshape(i["shape"])
        s.run(None, feed)
        t = []
        for _ in range(runs):
            a = time.perf_counter(); s.run(None, feed); t.append((time.perf_counter() - a) * 1000)
        t.sort()
        print(json.dumps({"name": m["name"], "variant": m["variant"], "ms": t[len(t) // 2]}))
    except Exception as e:  # reported in the table, not fatal
        print(json.dumps({"name": m["name"], "variant": m["variant"], "error": str(e)[:200]}))
