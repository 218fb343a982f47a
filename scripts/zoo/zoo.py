#!/usr/bin/env python3
"""Ferrite on models it was not built around, side by side with their own runtimes.

Usage: zoo.py FERRITE_BIN DATA_DIR WORK_DIR DOC_MD

torchvision CNNs (random weights, seed 0, with their batch-norm statistics
re-estimated on the calibration photos so activations have realistic
scales), exported to ONNX (opset 13): Ferrite's float package against
onnxruntime (largest error relative to the output's largest magnitude),
Ferrite's int8 (defaults) and onnxruntime's quantize_static (per-channel
QDQ) against each one's float model on the same 64 calibration and 120
evaluation crops (top-1 agreement, SQNR), and f32 latency, 1 thread,
Ferrite against onnxruntime in one run (medians).

The TFLite models in MediaPipe's wheel: Ferrite's float package against
LiteRT, and the int8 models of Ferrite (defaults) and ai-edge-quantizer
(static_wi8_ai8) against the float model on crops of the photos
(input size and range per model), mean SQNR over the outputs.

The weights are not trained, so compare the quantizers with each other,
never with published accuracies. Writes the tables between the markers in
DOC_MD.
"""
import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "quant-compare"))
from compare import aeq_quantize, ort_quantize, run_onnx, sqnr  # noqa: E402

TORCHVISION = ["resnet18", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
               "shufflenet_v2_x1_0", "squeezenet1_1", "mnasnet0_5", "regnet_x_400mf",
               "googlenet", "densenet121"]
N_EVAL = 120


def export(name, path, calib_nchw):
    import torch
    import torchvision

    torch.manual_seed(0)
    m = getattr(torchvision.models, name)(weights=None)
    for mod in m.modules():
        if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
            mod.reset_running_stats()
            mod.momentum = None  # a plain average over the batches
    m.train()
    with torch.no_grad():
        x = torch.from_numpy(calib_nchw)
        for i in range(0, len(x), 16):
            m(x[i:i + 16])
    m.eval()
    torch.onnx.export(m, torch.zeros(1, 3, 224, 224), path, opset_version=13, dynamo=False,
                      input_names=["input"], output_names=["logits"])


def ferrite_run(ferrite, path, xs, work):
    """Every output of `path` on each sample, in the model's order."""
    inp, od = os.path.join(work, "in.npy"), os.path.join(work, "out")
    rows = []
    for x in xs:
        np.save(inp, x[None].astype(np.float32))
        r = subprocess.run([ferrite, "run", path, "-i", inp, "--out-dir", od],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr.strip().splitlines()[-1])
        k, row = 0, []
        while os.path.exists(os.path.join(od, f"output{k}.npy")):
            row.append(np.load(os.path.join(od, f"output{k}.npy")))
            k += 1
        rows.append(row)
    return rows


def convert(ferrite, src, out, extra):
    t = time.time()
    r = subprocess.run([ferrite, "convert", src, "-o", out] + extra, capture_output=True, text=True)
    if r.returncode:
        # "error: cannot convert PATH: why" -> "why"
        why = r.stderr.strip().splitlines()[-1].split(f"{src}: ", 1)[-1]
        return None, why[:160]
    return time.time() - t, None


def bench_ferrite(ferrite, path):
    r = subprocess.run([ferrite, "bench", path, "--runs", "20", "--warmup", "3"],
                       capture_output=True, text=True, check=True)
    return float(r.stdout.split("median ")[1].split(" ms")[0])


def bench_ort(path, x):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feed = {s.get_inputs()[0].name: x[None]}
    for _ in range(3):
        s.run(None, feed)
    ts = []
    for _ in range(20):
        t = time.perf_counter()
        s.run(None, feed)
        ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts))


def torchvision_rows(ferrite, data, work):
    cal = np.load(os.path.join(data, "mnv2/calib_nchw.npy"))
    ev = np.load(os.path.join(data, "mnv2/eval_nchw.npy"))[:N_EVAL]
    cal_dir = os.path.join(work, "calib_nchw")
    os.makedirs(cal_dir, exist_ok=True)
    for i, x in enumerate(cal):
        np.save(os.path.join(cal_dir, f"c{i:03d}.npy"), x[None])
    rows = []
    for name in TORCHVISION:
        src = os.path.join(work, f"{name}.onnx")
        if not os.path.exists(src):
            export(name, src, cal)
        f32, q8 = os.path.join(work, f"{name}_f32.fer"), os.path.join(work, f"{name}_int8.fer")
        _, err = convert(ferrite, src, f32, [])
        if err:
            rows.append((name, f"float conversion failed: {err}"))
            continue
        ref = run_onnx(src, ev)[0]
        ff = np.stack([r[0] for r in ferrite_run(ferrite, f32, ev, work)]).reshape(ref.shape)
        ferr = np.abs(ff - ref).max() / np.abs(ref).max()
        secs, err = convert(ferrite, src, q8, ["--quantize", "int8", "--calib", cal_dir])
        if err:
            rows.append((name, f"int8 conversion failed: {err}"))
            continue
        fq = np.stack([r[0] for r in ferrite_run(ferrite, q8, ev, work)]).reshape(ref.shape)
        oq_path = os.path.join(work, f"{name}_ort_qdq.onnx")
        ort_quantize(src, oq_path, cal)
        oq = run_onnx(oq_path, ev)[0]
        t1 = lambda q: int((q.argmax(1) == ref.argmax(1)).sum())
        ms_f, ms_o = bench_ferrite(ferrite, f32), bench_ort(src, ev[0])
        rows.append((name, ferr, t1(fq), sqnr(ref, fq), t1(oq), sqnr(ref, oq), secs, ms_f, ms_o))
        print(rows[-1], flush=True)
    return rows


def photo_crops(n, h, w, lo, hi, seed):
    import skimage.data

    imgs = [np.asarray(skimage.data.astronaut()), np.asarray(skimage.data.chelsea()),
            np.asarray(skimage.data.coffee()), np.asarray(skimage.data.rocket()),
            np.asarray(skimage.data.stereo_motorcycle()[0])]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        im = imgs[rng.integers(len(imgs))]
        H, W = im.shape[:2]
        s = rng.uniform(0.5, 1.0) * min(H, W)
        y0, x0 = rng.uniform(0, H - s), rng.uniform(0, W - s)
        c = Image.fromarray(im).crop((int(x0), int(y0), int(x0 + s), int(y0 + s)))
        a = np.asarray(c.resize((w, h), Image.BILINEAR), np.float32) / 255.0
        if rng.random() < 0.5:
            a = a[:, ::-1]
        out.append(a * (hi - lo) + lo)
    return np.stack(out).astype(np.float32)


def litert_run(path, xs):
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=path)
        it.allocate_tensors()
    except Exception:  # noqa: BLE001 - custom ops: try the accelerator API
        return compiled_run(path, xs)
    i = it.get_input_details()[0]
    rows = []
    for x in xs:
        it.set_tensor(i["index"], x[None])
        it.invoke()
        rows.append([it.get_tensor(o["index"]).copy() for o in it.get_output_details()])
    return rows


def compiled_run(path, xs):
    """LiteRT's CompiledModel API (XNNPACK on the CPU), which also runs the
    MediaPipe custom ops XNNPACK implements (Convolution2DTransposeBias)
    where the Interpreter has no kernel for them. Float outputs only."""
    from ai_edge_litert.compiled_model import CompiledModel

    cm = CompiledModel.from_file(path)
    # A model without signatures gets one placeholder signature.
    sig = next(iter(cm.get_signature_list()))
    shapes = [tuple(d["shape"]) for d in cm.get_output_tensor_details(sig).values()]
    rows = []
    for x in xs:
        ins, outs = cm.create_input_buffers(0), cm.create_output_buffers(0)
        ins[0].write(np.ascontiguousarray(x[None], np.float32))
        cm.run_by_index(0, ins, outs)
        rows.append([o.read(int(np.prod(s)), np.float32).reshape(s) for o, s in zip(outs, shapes)])
    return rows


def input_shape(path):
    """The (h, w) of the model's first input, read by LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=path)
        _, h, w, _ = it.get_input_details()[0]["shape"]
        return h, w
    except Exception:  # noqa: BLE001 - custom ops: try the accelerator API
        from ai_edge_litert.compiled_model import CompiledModel

        cm = CompiledModel.from_file(path)
        sig = next(iter(cm.get_signature_list()))
        _, h, w, _ = next(iter(cm.get_input_tensor_details(sig).values()))["shape"]
        return h, w


def mean_sqnr(ref, q):
    return float(np.mean([sqnr(np.stack([r[k] for r in ref]),
                               np.stack([x[k].reshape(r[k].shape) for x, r in zip(q, ref)]))
                          for k in range(len(ref[0]))]))


# Models no LiteRT API runs (MediaPipe custom ops that XNNPACK lacks), and
# what checks their float outputs instead.
NO_LITERT = {
    "face_landmark_with_attention":
        "LiteRT cannot run it (MediaPipe custom ops); checked against MediaPipe's "
        "face mesh instead (tests/mesh_mediapipe.rs); int8 SQNR vs Ferrite's float",
}


def mediapipe_rows(ferrite, work):
    rows = []
    for path in sorted(glob.glob(os.path.join(work, "mediapipe/modules/**/*.tflite"), recursive=True)):
        name = os.path.basename(path)[:-7]
        mw = os.path.join(work, "mp", name)
        os.makedirs(os.path.join(mw, "calib"), exist_ok=True)
        f32, q8 = os.path.join(mw, "f32.fer"), os.path.join(mw, "int8.fer")
        _, err = convert(ferrite, path, f32, [])
        if err:
            rows.append((name, f"not converted: {err}"))
            continue
        try:
            h, w = input_shape(path)
        except Exception as e:  # noqa: BLE001 - the table says why
            why = (str(e) or type(e).__name__).splitlines()[0][:120]
            rows.append((name, f"LiteRT cannot load it: {why}"))
            continue
        lo, hi = (-1.0, 1.0) if "detection" in name else (0.0, 1.0)
        ev = photo_crops(16, h, w, lo, hi, 1)
        cal = photo_crops(64, h, w, lo, hi, 2)
        for k, x in enumerate(cal):
            np.save(os.path.join(mw, "calib", f"c{k:03d}.npy"), x[None])
        ff = ferrite_run(ferrite, f32, ev, mw)
        if name in NO_LITERT:
            # The int8 SQNR is then against Ferrite's float outputs.
            ref, ferr = ff, NO_LITERT[name]
        else:
            ref = litert_run(path, ev)
            ferr = max(np.abs(a.reshape(b.shape) - b).max() / max(np.abs(b).max(), 1e-30)
                       for ra, rb in zip(ff, ref) for a, b in zip(ra, rb))
        secs, err = convert(ferrite, path, q8, ["--quantize", "int8", "--calib",
                                                os.path.join(mw, "calib")])
        s_fer = mean_sqnr(ref, ferrite_run(ferrite, q8, ev, mw)) if not err else None
        try:
            aeq = os.path.join(mw, "aeq.tflite")
            aeq_quantize(path, aeq, cal)
            s_aeq = mean_sqnr(ref, litert_run(aeq, ev))
        except StopIteration:
            s_aeq = "failed: needs a signature, the model has none"
        except Exception as e:  # noqa: BLE001
            s_aeq = f"failed: {(str(e) or type(e).__name__).splitlines()[0][:80]}"
        rows.append((name, ferr, s_fer if s_fer is not None else f"failed: {err}", s_aeq, secs))
        print(rows[-1], flush=True)
    return rows


def fmt(v, spec, unit=""):
    return v if isinstance(v, str) else format(v, spec) + unit


def main():
    ferrite, data, work, doc = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    # ZOO_REUSE_TORCHVISION=1 keeps the last run's torchvision rows (they
    # take most of the time) and redoes the MediaPipe ones.
    saved = os.path.join(work, "torchvision_rows.json")
    if os.environ.get("ZOO_REUSE_TORCHVISION") and os.path.exists(saved):
        tv = [tuple(r) for r in json.load(open(saved))]
    else:
        tv = torchvision_rows(ferrite, data, work)
        json.dump([[v if isinstance(v, str) else float(v) if not isinstance(v, int) else v
                    for v in r] for r in tv], open(saved, "w"))
    mp = mediapipe_rows(ferrite, work)
    lines = ["<!-- zoo:begin -->",
             f"torchvision (random weights), {N_EVAL} evaluation crops; latency f32, 1 thread, medians of 20:",
             "",
             "| model | float vs onnxruntime (max rel. error) | Ferrite int8 top-1 | Ferrite int8 SQNR | onnxruntime int8 top-1 | onnxruntime int8 SQNR | Ferrite int8 conversion | f32 ms Ferrite / onnxruntime |",
             "|---|---|---|---|---|---|---|---|"]
    for r in tv:
        if len(r) == 2:
            lines.append(f"| {r[0]} | {r[1]} | | | | | | |")
            continue
        name, ferr, t1f, sf, t1o, so, secs, msf, mso = r
        lines.append(f"| {name} | {ferr:.1e} | {t1f}/{N_EVAL} | {sf:.2f} dB | {t1o}/{N_EVAL} | {so:.2f} dB "
                     f"| {secs:.0f} s | {msf:.1f} / {mso:.1f} |")
    lines += ["", "MediaPipe's TFLite models (mediapipe==0.10.21), 16 evaluation crops, 64 calibration crops:",
              "", "| model | float vs LiteRT (max rel. error) | Ferrite int8 SQNR | ai-edge-quantizer int8 SQNR | Ferrite int8 conversion |",
              "|---|---|---|---|---|"]
    for r in mp:
        if len(r) == 2:
            lines.append(f"| {r[0]} | {r[1]} | | | |")
            continue
        name, ferr, sf, sa, secs = r
        lines.append(f"| {name} | {fmt(ferr, '.1e')} | {fmt(sf, '.1f', ' dB')} | {fmt(sa, '.1f', ' dB')} | "
                     f"{fmt(secs, '.0f', ' s') if secs else '-'} |")
    lines.append("<!-- zoo:end -->")
    text = open(doc).read()
    b, e = "<!-- zoo:begin -->", "<!-- zoo:end -->"
    text = text[:text.index(b)] + "\n".join(lines) + text[text.index(e) + len(e):]
    open(doc, "w").write(text)


if __name__ == "__main__":
    main()
