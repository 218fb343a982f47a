#!/usr/bin/env python3
"""Ferrite's int8 quantizer against peer quantizers, on the same data.

Usage: compare.py FERRITE_BIN DATA_DIR WORK_DIR DOC_MD

MobileNetV2 (../shared/models or models/cache): Ferrite --quantize int8 on the
float .tflite (and the .onnx when Ferrite imports it), TFLiteConverter's int8
(mobilenet_v2_torchvision_int8.tflite), ai-edge-quantizer static_wi8_ai8 on
the float .tflite, onnxruntime quantize_static (per-channel QDQ) on the .onnx.
Every quantizer gets the same 64 calibration samples; every int8 model is
compared with its own float model on the >= 200 evaluation samples:
top-1 agreement and end-to-end SQNR of the logits.

BlazeFace: Ferrite int8 of the short-range .tflite against onnxruntime
quantize_static of the BlazeFace front 128 ONNX (the same network), both
calibrated on the same 64 samples; SQNR of scores and boxes vs float, and
the faces found (score > 0.5, MediaPipe short-range anchors) vs float.

Writes the tables between the markers in DOC_MD.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def sqnr(ref, q):
    ref = np.asarray(ref, np.float64).ravel()
    q = np.asarray(q, np.float64).ravel()
    e = ((ref - q) ** 2).sum()
    return float("inf") if e == 0 else float(10 * np.log10((ref ** 2).sum() / e))


def sigmoid_sqnr(ref_logits, q_logits):
    """SQNR of the scores a detector reads (after the sigmoid, MediaPipe's
    clipping at +-100)."""
    sig = lambda x: 1 / (1 + np.exp(-np.clip(np.asarray(x, np.float64), -100, 100)))
    return sqnr(sig(ref_logits), sig(q_logits))


# --- runners -----------------------------------------------------------------

def run_tflite(path, xs):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path)
    it.allocate_tensors()
    i = it.get_input_details()[0]
    outs = []
    for x in xs:
        if i["dtype"] == np.int8:
            s, z = i["quantization"]
            x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
        it.set_tensor(i["index"], x[None].astype(i["dtype"]))
        it.invoke()
        row = []
        for o in sorted(it.get_output_details(), key=lambda d: d["name"]):
            y = it.get_tensor(o["index"]).astype(np.float32)
            if o["dtype"] == np.int8:
                s, z = o["quantization"]
                y = (y - z) * s
            row.append(y[0])
        outs.append(row)
    return [np.stack([r[k] for r in outs]) for k in range(len(outs[0]))]


def run_onnx(path, xs):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    res = [s.run(None, {name: x[None]}) for x in xs]
    return [np.stack([r[k][0] for r in res]) for k in range(len(res[0]))]


def run_ferrite(ferrite, path, xs, work):
    outs = []
    inp = os.path.join(work, "in.npy")
    od = os.path.join(work, "out")
    for x in xs:
        np.save(inp, x[None])
        subprocess.run([ferrite, "run", path, "-i", inp, "--out-dir", od], check=True,
                       capture_output=True)
        k = 0
        row = []
        while os.path.exists(os.path.join(od, f"output{k}.npy")):
            row.append(np.load(os.path.join(od, f"output{k}.npy"))[0])
            k += 1
        outs.append(row)
    return [np.stack([r[k] for r in outs]) for k in range(len(outs[0]))]


def ferrite_convert(ferrite, src, out, calib, extra):
    cmd = [ferrite, "convert", src, "-o", out, "--quantize", "int8", "--calib", calib,
           "--calib-samples", "64"] + extra
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "failed"
    return None


# --- peers -------------------------------------------------------------------

def ort_quantize(src, dst, calib):
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)
    import onnxruntime as ort

    import onnx
    from onnx import version_converter

    name = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).get_inputs()[0].name
    model = onnx.load(src)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        # Per-channel QDQ needs DequantizeLinear's axis attribute (opset 13).
        up = dst + ".opset13.onnx"
        onnx.save(version_converter.convert_version(model, 13), up)
        src = up

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: x[None]} for x in calib])

        def get_next(self):
            return next(self.it, None)

    quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)


def aeq_quantize(src, dst, calib):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    it = Interpreter(model_path=src)
    sigs = it.get_signature_list()
    key = next(iter(sigs))
    in_name = sigs[key]["inputs"][0]
    qt = quantizer.Quantizer(src, recipe.static_wi8_ai8())
    cal = qt.calibrate({key: [{in_name: x[None]} for x in calib]})
    qt.quantize(cal).export_model(dst, overwrite=True)


# --- BlazeFace decoding ------------------------------------------------------

def anchors_short_range():
    """MediaPipe SSD anchors for the short-range model: 128x128 input,
    strides 8, 16, 16, 16; 2 anchors per cell per layer; fixed size 1."""
    out = []
    strides = [8, 16, 16, 16]
    layer = 0
    while layer < len(strides):
        n = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            n += 2  # aspect ratio 1.0 plus the interpolated scale
            last += 1
        fm = int(np.ceil(128 / strides[layer]))
        for y in range(fm):
            for x in range(fm):
                for _ in range(n):
                    out.append(((x + 0.5) / fm, (y + 0.5) / fm))
        layer = last
    return np.array(out, np.float32)


ANCHORS = anchors_short_range()


def faces(scores, boxes, thr=0.5):
    """Faces (score > thr) after MediaPipe's weighted NMS, as the BlazeFace
    preset runs it: [(score, x0, y0, x1, y1)]. Each face is the best
    remaining candidate's score with the score-weighted mean box of the
    candidates overlapping it by IoU > 0.3."""
    s = 1 / (1 + np.exp(-np.clip(scores.ravel().astype(np.float64), -100, 100)))
    b = boxes.reshape(-1, 16)
    cx = b[:, 0] / 128 + ANCHORS[:, 0]
    cy = b[:, 1] / 128 + ANCHORS[:, 1]
    w = b[:, 2] / 128
    h = b[:, 3] / 128
    cand = [(s[i], cx[i] - w[i] / 2, cy[i] - h[i] / 2, cx[i] + w[i] / 2, cy[i] + h[i] / 2)
            for i in np.argsort(-s) if s[i] > thr]
    keep = []
    while cand:
        top = cand[0]
        group = [c for c in cand if iou(top, c) > 0.3]
        cand = [c for c in cand if iou(top, c) <= 0.3]
        total = sum(c[0] for c in group)
        keep.append((top[0],) + tuple(sum(c[0] * c[j] for c in group) / total
                                      for j in range(1, 5)))
    return keep


def iou(a, b):
    x0, y0 = max(a[1], b[1]), max(a[2], b[2])
    x1, y1 = min(a[3], b[3]), min(a[4], b[4])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    ua = (a[3] - a[1]) * (a[4] - a[2]) + (b[3] - b[1]) * (b[4] - b[2]) - inter
    return inter / ua if ua > 0 else 0.0


def face_agreement(f_scores, f_boxes, q_scores, q_boxes):
    """(images where the faces match, total float faces, worst best-IoU of a float face)."""
    same = 0
    n_faces = 0
    min_iou = 1.0
    for k in range(len(f_scores)):
        ff = faces(f_scores[k], f_boxes[k])
        qf = faces(q_scores[k], q_boxes[k])
        n_faces += len(ff)
        ok = len(ff) == len(qf)
        for a in ff:
            best = max((iou(a, b) for b in qf), default=0.0)
            min_iou = min(min_iou, best)
            ok = ok and best >= 0.9
        same += ok
    return same, n_faces, min_iou


# --- main --------------------------------------------------------------------

def main():
    ferrite, data, work, doc = sys.argv[1:5]
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.abspath(os.path.join(here, "..", ".."))
    shared = os.environ.get("FERRITE_SHARED_MODELS", os.path.join(root, "..", "shared", "models"))
    os.makedirs(work, exist_ok=True)
    f32_tfl = os.path.join(shared, "mobilenet_v2_torchvision_f32.tflite")
    int8_tfl = os.path.join(shared, "mobilenet_v2_torchvision_int8.tflite")
    f32_onnx = os.path.join(shared, "mobilenet_v2_torchvision.onnx")
    cal_nhwc = np.load(os.path.join(data, "mnv2/calib_nhwc.npy"))
    cal_nchw = np.load(os.path.join(data, "mnv2/calib_nchw.npy"))
    ev_nhwc = np.load(os.path.join(data, "mnv2/eval_nhwc.npy"))
    ev_nchw = np.load(os.path.join(data, "mnv2/eval_nchw.npy"))
    n = len(ev_nhwc)
    rows = []
    ref_tfl = run_tflite(f32_tfl, ev_nhwc)[0]
    ref_onnx = run_onnx(f32_onnx, ev_nchw)[0]

    def row(name, q, ref, note=""):
        q = q.reshape(ref.shape)
        t1 = int((q.argmax(1) == ref.argmax(1)).sum())
        rows.append((name, t1, n, sqnr(ref, q), note))
        print(rows[-1], flush=True)

    pre = "resize=224x224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225"
    # Rows name their options beyond the defaults (--calib-method auto,
    # equalization, GPTQ, bias correction).
    variants = [("defaults: auto", ["--report", os.path.join(work, "mnv2_report.html")]),
                ("percentile", ["--calib-method", "percentile"]),
                ("minmax", ["--calib-method", "minmax"]),
                ("entropy", ["--calib-method", "entropy"]),
                ("mse", ["--calib-method", "mse"]),
                ("avgminmax", ["--calib-method", "avgminmax"]),
                ("avgminmax, --no-equalize", ["--calib-method", "avgminmax", "--no-equalize"]),
                ("auto, --min-sqnr 12: mixed precision", ["--min-sqnr", "12"])]
    for label, extra in variants:
        p = os.path.join(work, f"mnv2_tflite_int8_{len(rows)}.fer")
        err = ferrite_convert(ferrite, f32_tfl, p, os.path.join(data, "mnv2/calib"),
                              ["--preprocess", pre] + extra)
        if err:
            sys.exit(f"ferrite convert failed: {err}")
        row(f"Ferrite int8 (float .tflite, {label})", run_ferrite(ferrite, p, ev_nhwc, work)[0],
            ref_tfl)
    # Ferrite on the ONNX file, when the importer takes it.
    cal_dir = os.path.join(work, "calib_nchw")
    os.makedirs(cal_dir, exist_ok=True)
    for i, x in enumerate(cal_nchw):
        np.save(os.path.join(cal_dir, f"c{i:03d}.npy"), x[None])
    for method in ["auto", "percentile", "avgminmax"]:
        fer_onnx = os.path.join(work, f"mnv2_onnx_int8_{method}.fer")
        err = ferrite_convert(ferrite, f32_onnx, fer_onnx, cal_dir, ["--calib-method", method])
        if err is None:
            row(f"Ferrite int8 (.onnx, {method})",
                run_ferrite(ferrite, fer_onnx, ev_nchw, work)[0], ref_onnx)
        else:
            print("Ferrite on .onnx:", err)
    row("TFLiteConverter int8 (shipped file)", run_tflite(int8_tfl, ev_nhwc)[0], ref_tfl,
        "calibrated on its own 64 crops")
    aeq = os.path.join(work, "mnv2_aeq_int8.tflite")
    try:
        aeq_quantize(f32_tfl, aeq, cal_nhwc)
        row("ai-edge-quantizer static_wi8_ai8", run_tflite(aeq, ev_nhwc)[0], ref_tfl)
    except Exception as e:  # noqa: BLE001 - the table records why a peer is missing
        print("ai-edge-quantizer failed:", e)
        rows.append(("ai-edge-quantizer static_wi8_ai8", None, n, None, f"failed: {e}"))
    ortq = os.path.join(work, "mnv2_ort_qdq.onnx")
    ort_quantize(f32_onnx, ortq, cal_nchw)
    row("onnxruntime quantize_static (QDQ, per-channel)", run_onnx(ortq, ev_nchw)[0], ref_onnx)

    # BlazeFace.
    face_tfl = os.path.join(root, "models", "fixtures", "face_detection_short_range.tflite")
    face_onnx = os.environ.get("BLAZEFACE_FRONT_ONNX")
    fcal = np.load(os.path.join(data, "face/calib_nhwc.npy"))
    fev = np.load(os.path.join(data, "face/eval_nhwc.npy"))
    fref = run_tflite(face_tfl, fev)  # sorted by name: classificators, regressors
    # The photos themselves (and mirrored), letterboxed to 128x128 on black
    # as MediaPipe and the BlazeFace preset do: the faces a user would see.
    from PIL import Image
    sys.path.insert(0, here)
    import make_data

    photos = []
    for p in make_data.PHOTOS:
        im = Image.open(make_data.find_photo(p)).convert("RGB")
        for flip in (False, True):
            j = im.transpose(Image.FLIP_LEFT_RIGHT) if flip else im
            k = 128 / max(j.size)
            w, h = max(1, round(j.width * k)), max(1, round(j.height * k))
            boxed = Image.new("RGB", (128, 128))
            boxed.paste(j.resize((w, h), Image.BILINEAR), ((128 - w) // 2, (128 - h) // 2))
            photos.append(np.asarray(boxed, np.float32) / 127.5 - 1)
    photos = np.stack(photos)
    pref = run_tflite(face_tfl, photos)
    face_rows = []
    # With the detector preset, as a user converts BlazeFace: the score
    # logits' range is narrowed towards the threshold and the heads stay
    # float (unless --int8-heads).
    preset = ["--detector", "blazeface-short-range"]
    for label, extra in [("defaults: auto", ["--report", os.path.join(work, "face_report.html")]),
                         ("percentile", ["--calib-method", "percentile"]),
                         ("avgminmax", ["--calib-method", "avgminmax"]),
                         ("mse", ["--calib-method", "mse"]),
                         ("mse, --no-equalize", ["--calib-method", "mse", "--no-equalize"]),
                         ("mse, --int8-heads", ["--calib-method", "mse", "--int8-heads"]),
                         ("auto, --min-sqnr 15: mixed precision", ["--min-sqnr", "15"])]:
        face_fer = os.path.join(work, f"face_int8_{len(face_rows)}.fer")
        err = ferrite_convert(ferrite, face_tfl, face_fer, os.path.join(data, "face/calib"),
                              preset + extra)
        if err:
            sys.exit(f"ferrite convert (BlazeFace) failed: {err}")
        fq = run_ferrite(ferrite, face_fer, fev, work)  # model order: regressors, scores
        pq = run_ferrite(ferrite, face_fer, photos, work)
        same, nf, mi = face_agreement(fref[0], fref[1], fq[1], fq[0])
        psame, pnf, pmi = face_agreement(pref[0], pref[1], pq[1], pq[0])
        face_rows.append((f"Ferrite int8 (short-range .tflite, {label})", sqnr(fref[0], fq[1]),
                          sigmoid_sqnr(fref[0], fq[1]), sqnr(fref[1], fq[0]), same, len(fev), nf, mi, psame, len(photos), pnf,
                          pmi))
    if face_onnx and os.path.exists(face_onnx):
        oref = run_onnx(face_onnx, fev)
        oq_path = os.path.join(work, "face_ort_qdq.onnx")
        ort_quantize(face_onnx, oq_path, fcal)
        oq = run_onnx(oq_path, fev)
        # Outputs: scores 512 + 384, boxes 512 + 384.
        cat = lambda o, a, b: np.concatenate([o[a], o[b]], axis=1)
        r_s, r_b = cat(oref, 0, 1), cat(oref, 2, 3)
        q_s, q_b = cat(oq, 0, 1), cat(oq, 2, 3)
        same, nf, mi = face_agreement(r_s, r_b, q_s, q_b)
        po = run_onnx(face_onnx, photos)
        pq = run_onnx(oq_path, photos)
        psame, pnf, pmi = face_agreement(cat(po, 0, 1), cat(po, 2, 3), cat(pq, 0, 1),
                                         cat(pq, 2, 3))
        face_rows.append(("onnxruntime quantize_static (front 128 ONNX, QDQ per-channel)",
                          sqnr(r_s, q_s), sigmoid_sqnr(r_s, q_s), sqnr(r_b, q_b), same, len(fev), nf, mi, psame,
                          len(photos), pnf, pmi))
    for r in face_rows:
        print(r, flush=True)

    lines = ["<!-- quant-compare:begin -->",
             f"MobileNetV2, {n} evaluation crops/flips/scales, 64 calibration samples "
             "(`scripts/quant-compare/run.sh`):", "",
             "| quantizer | top-1 agreement with float | end-to-end SQNR (dB) | note |",
             "|---|---|---|---|"]
    for name, t1, total, s, note in rows:
        if t1 is None:
            lines.append(f"| {name} | — | — | {note} |")
        else:
            lines.append(f"| {name} | {t1}/{total} ({100 * t1 / total:.1f}%) | {s:.2f} | {note} |")
    lines += ["", f"BlazeFace, {len(fev)} evaluation crops, 64 calibration samples:", "",
              "| quantizer | score SQNR, logits (dB) | score SQNR, after the sigmoid (dB) | box SQNR (dB) | crops with the same faces (IoU ≥ 0.9) | float faces in crops | worst IoU | photos with the same faces | float faces in photos | worst IoU (photos) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, ss, sg, bs, same, tot, nf, mi, ps, pt, pnf, pmi in face_rows:
        lines.append(f"| {name} | {ss:.2f} | {sg:.2f} | {bs:.2f} | {same}/{tot} | {nf} | {mi:.3f} | "
                     f"{ps}/{pt} | {pnf} | {pmi:.3f} |")
    lines.append("<!-- quant-compare:end -->")
    text = open(doc).read() if os.path.exists(doc) else ""
    b, e = "<!-- quant-compare:begin -->", "<!-- quant-compare:end -->"
    block = "\n".join(lines)
    if b in text and e in text:
        text = text[:text.index(b)] + block + text[text.index(e) + len(e):]
    else:
        text += "\n" + block + "\n"
    with open(doc, "w") as f:
        f.write(text)
    with open(os.path.join(work, "compare.json"), "w") as f:
        json.dump({"mobilenet_v2": rows, "blazeface": face_rows}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
