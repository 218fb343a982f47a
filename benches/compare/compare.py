#!/usr/bin/env python3
"""Side-by-side latency of Ferrite, LiteRT (XNNPACK), ONNX Runtime and tract.

Usage (normally through benches/compare/run.sh, which makes the venv and the .fer files):

    compare.py --ferrite target/release/ferrite --models DIR --fer DIR [--threads 1 | 1,2]
               [--rounds 6] [--runs 10] [--warmup 5] [--out table.md]

Each runtime loads each model once. The runtimes then take turns, round after
round: in every round each one does `--warmup` untimed runs and `--runs` timed
runs, so slow drifts of a shared machine (other jobs, clock changes) hit every
runtime alike. Ferrite is timed in its own process by `ferrite bench --json`
(a new process each round, so it gets FERRITE_EXTRA_WARMUP more untimed
runs), which reports the time of each `Session::invoke`; the peers are timed around
their `invoke`/`run` call in this process. Inputs are random data of the
model's input type (the same seed for every round). The table gives the
median over all timed runs (rounds x runs, at least 50) and the ratio
Ferrite / peer (below 1 means Ferrite is faster).

With a list of thread counts (`--threads 1,2`) every runtime runs at each
count, all of them taking turns round after round, and the table gives each
runtime's median at each count and its speedup over the first count: thread
scaling measured side by side, so load from elsewhere falls on all alike.

Models (missing files are reported and skipped):
  MobileNetV2 int8   mobilenet_v2_torchvision_int8.tflite (Ferrite, LiteRT), *_qdq_int8.onnx (ORT, tract)
  MobileNetV2 f32    mobilenet_v2_torchvision_f32.tflite (Ferrite, LiteRT), mobilenet_v2_torchvision.onnx (ORT, tract)
  BlazeFace f32      face_detection_short_range.tflite (Ferrite, LiteRT; no ONNX export of this model)
  BlazeFace int8     Ferrite's own quantization (run.sh makes it with `convert --quantize int8`);
                     LiteRT only if a blazeface_int8.tflite is put next to the .fer files
"""

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def random_input(shape, dtype, rng):
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max + 1, size=shape, dtype=dtype)
    return rng.uniform(-1, 1, size=shape).astype(dtype)


class LiteRT:
    name = "LiteRT"

    def __init__(self, path, threads):
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_path=str(path), num_threads=threads)
        self.it.allocate_tensors()
        rng = np.random.default_rng(7)
        for d in self.it.get_input_details():
            self.it.set_tensor(d["index"], random_input(d["shape"], d["dtype"], rng))

    def run(self):
        self.it.invoke()


class Ort:
    name = "ONNX Runtime"

    def __init__(self, path, threads):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(7)
        types = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}
        self.feed = {
            i.name: random_input([d if isinstance(d, int) else 1 for d in i.shape], types[i.type], rng)
            for i in self.s.get_inputs()
        }

    def run(self):
        self.s.run(None, self.feed)


class Tract:
    name = "tract"
    # The Python binding runs on one thread whatever the count asked for, so
    # scaling tables leave it out.
    one_thread_only = True

    def __init__(self, path, threads):
        import tract

        model = tract.onnx().load(str(path)).into_model()
        fact = str(model.input_fact(0))  # e.g. "1,3,224,224,F32"
        shape = [int(d) for d in fact.split(",")[:-1]]
        self.m = model.into_runnable()
        self.x = random_input(shape, np.float32, np.random.default_rng(7))

    def run(self):
        self.m.run([self.x])


# Ferrite runs in a new process every round while the peers stay loaded in
# this one, and its first runs after a start are slower (first touches of the
# arena and the packed weights, the clock ramping up: on the dev VM runs
# 6-15 of a process took 4.5-4.8 ms where runs 51-150 took 3.9-4.0 ms). So
# each round gives it this many untimed runs more than the peers get.
FERRITE_EXTRA_WARMUP = 25


class Ferrite:
    name = "Ferrite"

    def __init__(self, exe, fer, threads):
        self.cmd = [str(exe), "bench", str(fer), "--threads", str(threads), "--json"]

    def round(self, runs, warmup):
        warmup += FERRITE_EXTRA_WARMUP
        out = subprocess.run(
            self.cmd + ["--runs", str(runs), "--warmup", str(warmup)], check=True, capture_output=True, text=True
        ).stdout
        return json.loads(out)["times_ms"]


def time_peer(peer, runs, warmup):
    for _ in range(warmup):
        peer.run()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        peer.run()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferrite", required=True, type=Path)
    ap.add_argument("--models", required=True, type=Path, help="folder with the shared .tflite/.onnx models")
    ap.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parents[2] / "models/fixtures")
    ap.add_argument("--fer", required=True, type=Path, help="folder with the converted .fer files")
    ap.add_argument("--threads", type=lambda v: [int(t) for t in v.split(",")], default=[1],
                    help="thread count, or a comma-separated list to measure scaling")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="model names to run (default: all)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.rounds * a.runs < 50:
        sys.exit("error: rounds x runs must be at least 50")

    m, fx, fer = a.models, a.fixtures, a.fer
    table = [
        ("MobileNetV2 int8", fer / "mobilenet_v2_int8.fer", {
            LiteRT: m / "mobilenet_v2_torchvision_int8.tflite",
            Ort: m / "mobilenet_v2_torchvision_qdq_int8.onnx",
            Tract: m / "mobilenet_v2_torchvision_qdq_int8.onnx",
        }),
        # The same QDQ file on both sides: Ferrite's int8 ops from the ONNX import
        # give onnxruntime's answers to the bit, so this row is like for like.
        ("MobileNetV2 int8 (QDQ ONNX)", fer / "mobilenet_v2_qdq.fer", {
            Ort: m / "mobilenet_v2_torchvision_qdq_int8.onnx",
            Tract: m / "mobilenet_v2_torchvision_qdq_int8.onnx",
        }),
        ("MobileNetV2 f32", fer / "mobilenet_v2_f32.fer", {
            LiteRT: m / "mobilenet_v2_torchvision_f32.tflite",
            Ort: m / "mobilenet_v2_torchvision.onnx",
            Tract: m / "mobilenet_v2_torchvision.onnx",
        }),
        ("BlazeFace short-range f32", fer / "blazeface_f32.fer", {
            LiteRT: fx / "face_detection_short_range.tflite",
        }),
        ("BlazeFace short-range int8", fer / "blazeface_int8.fer", {
            LiteRT: fer / "blazeface_int8.tflite",
        }),
    ]
    peers_order = [LiteRT, Ort, Tract]
    rows = []
    for title, fer_path, peer_paths in table:
        if a.only and title not in a.only:
            continue
        if not fer_path.exists():
            print(f"skip {title}: {fer_path} not found", file=sys.stderr)
            rows.append((title, None, {}))
            continue
        # (runtime, threads) -> runner; keys are "name" with one thread
        # count, "name@threads" with several.
        key = (lambda n, t: n) if len(a.threads) == 1 else (lambda n, t: f"{n}@{t}")
        runners = []
        for t in a.threads:
            runners.append((key("Ferrite", t), Ferrite(a.ferrite, fer_path, t)))
            for cls in peers_order:
                p = peer_paths.get(cls)
                if p is None or not p.exists():
                    continue
                if len(a.threads) > 1 and getattr(cls, "one_thread_only", False):
                    continue
                try:
                    runners.append((key(cls.name, t), cls(p, t)))
                except Exception as e:  # a peer that can't load the model is reported, not fatal
                    print(f"{title}: {cls.name} failed to load {p}: {e}", file=sys.stderr)
        times = {name: [] for name, _ in runners}
        for r in range(a.rounds):
            for name, rt in runners:
                if isinstance(rt, Ferrite):
                    times[name] += rt.round(a.runs, a.warmup)
                else:
                    times[name] += time_peer(rt, a.runs, a.warmup)
            print(f"{title}: round {r + 1}/{a.rounds}", file=sys.stderr)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append((title, med, {k: len(v) for k, v in times.items()}))
        print(f"{title}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in med.items()), file=sys.stderr)

    names = ["Ferrite"] + [c.name for c in peers_order]
    threads = ",".join(map(str, a.threads))
    lines = [
        f"Median latency in ms over {a.rounds} alternating rounds of {a.runs} runs "
        f"({a.rounds * a.runs} timed runs per runtime), {threads} thread(s).",
        f"CPU: {cpu_name()}; {datetime.date.today().isoformat()}; "
        f"Python {platform.python_version()}.",
        "",
        "| model | " + " | ".join(names) + " | " + " | ".join(f"Ferrite / {n}" for n in names[1:]) + " |",
        "|---" * (2 * len(names)) + "|",
    ]
    if len(a.threads) > 1:
        lines[3:] = scaling_table(rows, names, a.threads)
    for title, med, _ in rows if len(a.threads) == 1 else []:
        if med is None:
            lines.append(f"| {title} | " + " | ".join(["skipped"] * (2 * len(names) - 1)) + " |")
            continue
        f = med["Ferrite"]
        cells = [f"{med[n]:.3f}" if n in med else "n/a" for n in names]
        ratios = [f"{f / med[n]:.2f}" if n in med else "n/a" for n in names[1:]]
        lines.append(f"| {title} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


def scaling_table(rows, names, threads):
    """Markdown lines: per model and runtime, the median at each thread count
    and the speedup of each later count over the first."""
    t0 = threads[0]
    head = ["model", "runtime"] + [f"{t} thread(s)" for t in threads] + [f"{t} vs {t0}" for t in threads[1:]]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for title, med, _ in rows:
        if med is None:
            lines.append(f"| {title} | skipped |" + " |" * (len(head) - 2))
            continue
        for n in names:
            if f"{n}@{t0}" not in med:
                continue
            ms = [med.get(f"{n}@{t}") for t in threads]
            cells = [f"{v:.3f}" if v else "n/a" for v in ms]
            cells += [f"{ms[0] / v:.2f}x" if v else "n/a" for v in ms[1:]]
            lines.append(f"| {title} | {n} | " + " | ".join(cells) + " |")
    return lines


if __name__ == "__main__":
    main()
