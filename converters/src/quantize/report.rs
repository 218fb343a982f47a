//! The quantization report: one self-contained HTML page with inline SVG
//! charts (opens offline, no scripts), `quant.json` with the same numbers,
//! and the one-paragraph summary `ferrite convert` prints.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::{json, Value};

use super::observe::{Method, Observer};
use super::plan::{Assignment, WeightStats};
use super::{Evaluation, FloatOp};
use crate::ir::Graph;

/// What the report is built from.
pub struct Inputs<'a> {
    pub graph: &'a Graph,
    pub int8: &'a [bool],
    pub float_ops: &'a [FloatOp],
    pub observers: &'a [Observer],
    pub assignment: &'a Assignment,
    pub weights: &'a [WeightStats],
    pub eval: &'a Evaluation,
    pub method: Method,
    /// With `--calib-method auto`: each method tried and its outputs'
    /// relative noise energy (see `quantize::output_noise`).
    pub method_trials: &'a [(Method, f64)],
    /// Measurement samples the methods were compared on.
    pub choice_samples: usize,
    pub calibration_samples: usize,
    pub eval_on_calibration: bool,
    pub conversions: usize,
    /// Weight channels whose scale was widened so the int32 bias fits.
    pub bias_widened: usize,
    pub iterations: usize,
    pub int8_io: bool,
    /// Whether bias correction was applied (it is kept only when it helps).
    pub bias_corrected: bool,
    /// Tensors between conv pairs equalized (unless `--no-equalize`).
    pub equalized: &'a [usize],
    /// Layers whose int8 weights GPTQ rounded.
    pub gptq_layers: usize,
    /// Layers too wide for GPTQ (more than `gptq::MAX_INPUTS` inputs).
    pub gptq_too_wide: usize,
    /// Graph outputs read through a sigmoid (their SQNR is measured after it).
    pub logit_outputs: &'a [usize],
}

/// One op's row.
#[derive(Debug, Clone)]
pub struct OpRow {
    pub index: usize,
    pub origin: String,
    pub op: String,
    pub output: String,
    pub int8: bool,
    pub float_reason: Option<String>,
    pub sqnr_db: Option<f64>,
    pub cosine: Option<f64>,
    /// Observed min/max of the (first) output.
    pub observed: Option<(f32, f32)>,
    /// The range int8 covers.
    pub quantized: Option<(f32, f32)>,
}

/// One graph output's end-to-end error.
#[derive(Debug, Clone)]
pub struct OutputRow {
    pub name: String,
    pub sqnr_db: f64,
    pub cosine: f64,
    pub max_abs_err: f64,
    pub top1: Option<(usize, usize)>,
}

/// The report's numbers.
#[derive(Debug, Clone)]
pub struct Report {
    pub method: String,
    /// `--calib-method auto`: each method tried and its combined output SQNR
    /// (dB of the outputs' mean relative noise energy; `None` when not
    /// finite).
    pub method_trials: Vec<(String, Option<f64>)>,
    pub choice_samples: usize,
    pub calibration_samples: usize,
    pub eval_samples: usize,
    pub eval_on_calibration: bool,
    pub int8_io: bool,
    pub ops: Vec<OpRow>,
    pub outputs: Vec<OutputRow>,
    pub weights: Vec<(String, WeightStats)>,
    pub concat_requantized: Vec<(String, String, f32)>,
    pub conversions: usize,
    pub bias_widened: usize,
    pub iterations: usize,
    pub bias_corrected: bool,
    pub gptq_layers: usize,
    pub gptq_too_wide: usize,
    /// Names of the tensors equalized (unless `--no-equalize`).
    pub equalized: Vec<String>,
    /// Names of the outputs measured after a sigmoid.
    pub logit_outputs: Vec<String>,
}

fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Report {
    /// Gathers the numbers.
    pub fn build(i: Inputs<'_>) -> Report {
        let g = i.graph;
        let ops = g
            .nodes
            .iter()
            .enumerate()
            .map(|(n, node)| {
                let out = node.outputs.first().copied();
                let agreement = i.eval.per_node.get(n).copied().flatten();
                OpRow {
                    index: n,
                    origin: super::op_label(g, n),
                    op: node.code.name().to_string(),
                    output: out.map(|o| g.tensors[o].name.clone()).unwrap_or_default(),
                    int8: i.int8[n],
                    float_reason: i
                        .float_ops
                        .iter()
                        .find(|f| f.node == n)
                        .map(|f| f.reason.clone()),
                    sqnr_db: agreement.map(|a| a.sqnr_db()),
                    cosine: agreement.map(|a| a.cosine()),
                    observed: out
                        .and_then(|o| i.observers.get(o))
                        .filter(|o| o.seen())
                        .map(|o| (o.min, o.max)),
                    quantized: out.and_then(|o| i.assignment.range.get(o).copied().flatten()),
                }
            })
            .collect();
        let outputs = i
            .eval
            .outputs
            .iter()
            .map(|o| OutputRow {
                name: o.name.clone(),
                sqnr_db: o.agreement.sqnr_db(),
                cosine: o.agreement.cosine(),
                max_abs_err: o.agreement.max_abs_err,
                top1: o.top1,
            })
            .collect();
        Report {
            method: i.method.name(),
            method_trials: i
                .method_trials
                .iter()
                .map(|(m, noise)| (m.name(), noise.is_finite().then(|| super::noise_db(*noise))))
                .collect(),
            choice_samples: i.choice_samples,
            calibration_samples: i.calibration_samples,
            eval_samples: i.eval.samples,
            eval_on_calibration: i.eval_on_calibration,
            int8_io: i.int8_io,
            ops,
            outputs,
            weights: i
                .weights
                .iter()
                .map(|w| (super::op_label(g, w.node), w.clone()))
                .collect(),
            concat_requantized: i
                .assignment
                .requantized
                .iter()
                .map(|&(n, t, r)| (super::op_label(g, n), g.tensors[t].name.clone(), r))
                .collect(),
            conversions: i.conversions,
            bias_widened: i.bias_widened,
            iterations: i.iterations,
            bias_corrected: i.bias_corrected,
            gptq_layers: i.gptq_layers,
            gptq_too_wide: i.gptq_too_wide,
            equalized: i
                .equalized
                .iter()
                .map(|&t| g.tensors[t].name.clone())
                .collect(),
            logit_outputs: i
                .logit_outputs
                .iter()
                .map(|&t| g.tensors[t].name.clone())
                .collect(),
        }
    }

    /// How `--calib-method auto` chose (empty for a method given by name):
    /// " Methods tried by auto, combined output SQNR (...) on 16 of the
    /// held-out samples: percentile=99.99 19.0 dB, avgminmax 20.5 dB (kept),
    /// ..."
    pub fn choice_text(&self) -> String {
        if self.method_trials.is_empty() {
            return String::new();
        }
        let trials: Vec<String> = self
            .method_trials
            .iter()
            .map(|(m, db)| {
                let kept = if *m == self.method { " (kept)" } else { "" };
                match db {
                    Some(db) => format!("{m} {db:.1} dB{kept}"),
                    None => format!("{m} not finite{kept}"),
                }
            })
            .collect();
        format!(
            " Methods tried by auto, combined output SQNR (mean relative noise of the outputs) on {} {}: {}.",
            self.choice_samples,
            if self.eval_on_calibration {
                "calibration samples (none held out)"
            } else {
                "of the held-out samples"
            },
            trials.join(", ")
        )
    }

    /// Ops that run in int8 / stay float.
    pub fn counts(&self) -> (usize, usize) {
        let q = self.ops.iter().filter(|o| o.int8).count();
        (q, self.ops.len() - q)
    }

    /// The short form stored in the package metadata (`quantization`).
    pub fn meta_json(&self) -> Value {
        json!({
            "method": self.method,
            "calibration_samples": self.calibration_samples,
            "io": if self.int8_io { "int8" } else { "float" },
            "float_ops": self.ops.iter().filter(|o| !o.int8).map(|o| json!({
                "op": o.index, "origin": o.origin, "reason": o.float_reason,
            })).collect::<Vec<_>>(),
        })
    }

    /// Every number of the report (`quant.json`).
    pub fn to_json(&self) -> Value {
        let (q, f) = self.counts();
        json!({
            "method": self.method,
            "method_trials": self.method_trials.iter().map(|(m, db)| json!({
                "method": m, "sqnr_db": db,
                "kept": *m == self.method,
            })).collect::<Vec<_>>(),
            "method_choice_samples": (!self.method_trials.is_empty()).then_some(self.choice_samples),
            "calibration_samples": self.calibration_samples,
            "eval_samples": self.eval_samples,
            "eval_on_calibration_samples": self.eval_on_calibration,
            "io": if self.int8_io { "int8" } else { "float" },
            "int8_ops": q,
            "float_ops": f,
            "inserted_conversions": self.conversions,
            "bias_widened_channels": self.bias_widened,
            "bias_correction": self.bias_corrected,
            "gptq_layers": self.gptq_layers,
            "gptq_too_wide_layers": self.gptq_too_wide,
            "equalized_tensors": self.equalized,
            "sigmoid_outputs": self.logit_outputs,
            "build_iterations": self.iterations,
            "outputs": self.outputs.iter().map(|o| json!({
                "name": o.name, "sqnr_db": finite(o.sqnr_db), "cosine": finite(o.cosine),
                "max_abs_err": finite(o.max_abs_err),
                "top1_agreement": o.top1.map(|(a, n)| json!({"agree": a, "total": n})),
            })).collect::<Vec<_>>(),
            "ops": self.ops.iter().map(|o| json!({
                "index": o.index, "origin": o.origin, "op": o.op, "output": o.output,
                "precision": if o.int8 { "int8" } else { "float" },
                "float_reason": o.float_reason,
                "sqnr_db": o.sqnr_db.map(finite), "cosine": o.cosine.map(finite),
                "observed_range": o.observed.map(|r| [r.0, r.1]),
                "int8_range": o.quantized.map(|r| [r.0, r.1]),
            })).collect::<Vec<_>>(),
            "weights": self.weights.iter().map(|(origin, w)| json!({
                "origin": origin, "channels": w.channels,
                "channel_absmax_min": w.absmax_min, "channel_absmax_max": w.absmax_max,
                "sqnr_db": finite(w.sqnr_db),
            })).collect::<Vec<_>>(),
            "concat_requantized": self.concat_requantized.iter().map(|(op, t, r)| json!({
                "op": op, "input": t, "range_ratio": r,
            })).collect::<Vec<_>>(),
        })
    }

    /// The paragraph `ferrite convert` prints.
    pub fn summary(&self, report: Option<&Path>) -> String {
        let (q, f) = self.counts();
        let mut extras = String::new();
        if self.gptq_layers > 0 {
            let _ = write!(extras, ", GPTQ weights in {} layers", self.gptq_layers);
        }
        if self.gptq_too_wide > 0 {
            let _ = write!(
                extras,
                ", {} {} too wide for GPTQ (over {} inputs) rounded to nearest",
                self.gptq_too_wide,
                if self.gptq_too_wide == 1 {
                    "layer"
                } else {
                    "layers"
                },
                super::gptq::MAX_INPUTS
            );
        }
        if self.bias_corrected {
            extras.push_str(", bias-corrected");
        }
        if self.bias_widened > 0 {
            let _ = write!(
                extras,
                ", {} weight channels widened so their bias fits int32 (inputs tiny next to the bias)",
                self.bias_widened
            );
        }
        if !self.equalized.is_empty() {
            let _ = write!(extras, ", {} conv pairs equalized", self.equalized.len());
        }
        let mut s = format!(
            "Quantized {q} of {} ops to int8 ({} method{}, {} calibration samples{extras})",
            self.ops.len(),
            self.method,
            if self.method_trials.is_empty() {
                ""
            } else {
                " chosen by auto"
            },
            self.calibration_samples,
        );
        if f > 0 {
            // One name per source op (an imported op may become several).
            let mut origins: Vec<&str> = self
                .ops
                .iter()
                .filter(|o| !o.int8)
                .map(|o| o.origin.as_str())
                .collect();
            origins.dedup();
            let names: Vec<&str> = origins.iter().take(6).copied().collect();
            let more = if origins.len() > names.len() {
                ", ..."
            } else {
                ""
            };
            let _ = write!(s, "; {f} kept float ({}{more})", names.join(", "));
        }
        let where_ = if self.eval_on_calibration {
            format!("{} calibration samples (none held out)", self.eval_samples)
        } else {
            format!("{} held-out samples", self.eval_samples)
        };
        let _ = write!(s, ". On {where_}, end-to-end SQNR vs float:");
        for o in &self.outputs {
            let after = if self.logit_outputs.contains(&o.name) {
                " after the sigmoid"
            } else {
                ""
            };
            let _ = write!(
                s,
                " '{}'{after} {:.1} dB (cosine {:.4}",
                o.name, o.sqnr_db, o.cosine
            );
            if let Some((a, n)) = o.top1 {
                let _ = write!(s, ", top-1 agreement {a}/{n}");
            }
            s.push(')');
        }
        if let Some(w) = self
            .ops
            .iter()
            .filter(|o| o.int8)
            .filter_map(|o| o.sqnr_db.map(|v| (v, o)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
        {
            let _ = write!(s, "; lowest int8 op SQNR {:.1} dB at {}", w.0, w.1.origin);
        }
        s.push('.');
        s.push_str(&self.choice_text());
        if let Some(p) = report {
            let _ = write!(
                s,
                " Report: {} (numbers in {}).",
                p.display(),
                super::json_path(p).display()
            );
        }
        s
    }

    /// Writes the HTML page to `html` and `quant.json` beside it, each
    /// through a temporary file renamed into place.
    pub fn write(&self, html: &Path) -> Result<()> {
        crate::write_atomic(html, self.to_html().as_bytes())?;
        let json = serde_json::to_vec_pretty(&self.to_json())?;
        crate::write_atomic(&super::json_path(html), &json)
    }

    /// The self-contained HTML page.
    pub fn to_html(&self) -> String {
        let (q, f) = self.counts();
        let mut h = String::new();
        h.push_str(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Ferrite int8 quantization report</title><style>\
             body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}\
             h1{font-size:22px}h2{font-size:17px;margin-top:28px}\
             table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}\
             td.l,th.l{text-align:left}tr.float{background:#fff3e0}.bad{color:#b00020;font-weight:bold}\
             svg{background:#fafafa;border:1px solid #ddd}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}\
             </style></head><body>\n",
        );
        let _ = writeln!(h, "<h1>Ferrite int8 quantization report</h1>");
        let _ =
            writeln!(
            h,
            "<p>{q} ops in int8, {f} kept float, {} QUANTIZE/DEQUANTIZE inserted. Calibration: \
             <b>{}</b> on {} samples; {} conv pairs equalized; weights of {} layers rounded by GPTQ; \
             bias correction {}. Measured on {} \
             {} samples. I/O: {}.</p>",
            self.conversions,
            esc(&self.method),
            self.calibration_samples,
            self.equalized.len(),
            self.gptq_layers,
            if self.bias_corrected { "applied" } else { "not applied (not asked for, or no gain)" },
            self.eval_samples,
            if self.eval_on_calibration {
                "calibration (none held out)"
            } else {
                "held-out"
            },
            if self.int8_io { "int8" } else { "float" }
        );
        let choice = self.choice_text();
        if !choice.is_empty() {
            let _ = writeln!(h, "<p>{}</p>", esc(choice.trim()));
        }
        h.push_str("<h2>End-to-end error (int8 vs float)</h2>\n<table><tr><th class=l>output</th><th>SQNR dB</th><th>cosine</th><th>max |err|</th><th>top-1 agreement</th></tr>\n");
        for o in &self.outputs {
            let top1 = o
                .top1
                .map(|(a, n)| format!("{a}/{n}"))
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(
                h,
                "<tr><td class=l>{}{}</td><td>{:.2}</td><td>{:.5}</td><td>{:.4}</td><td>{top1}</td></tr>",
                esc(&o.name),
                if self.logit_outputs.contains(&o.name) {
                    " (after the sigmoid)"
                } else {
                    ""
                },
                o.sqnr_db,
                o.cosine,
                o.max_abs_err
            );
        }
        h.push_str("</table>\n");

        h.push_str("<h2>Per-op SQNR (dB) of int8 vs float activations</h2>\n");
        h.push_str("<p class=legend><span style=\"background:#1f77b4\"></span>int8<span style=\"background:#ff7f0e\"></span>float (kept)</p>\n");
        h.push_str(&self.sqnr_chart());
        h.push_str("<h2>Activation ranges</h2>\n<p class=legend><span style=\"background:#bbb\"></span>observed min..max<span style=\"background:#1f77b4\"></span>int8 range (after clipping, sharing, fixed ranges)</p>\n<p>Vertical axis: sign(v)·log10(1+|v|).</p>\n");
        h.push_str(&self.range_chart());
        h.push_str("<h2>Weight ranges (per-channel max |w|)</h2>\n<p class=legend><span style=\"background:#2ca02c\"></span>smallest..largest channel max |w| (log scale)</p>\n");
        h.push_str(&self.weight_chart());

        h.push_str("<h2>Ops kept float</h2>\n");
        if f == 0 {
            h.push_str("<p>None: every op runs in int8.</p>\n");
        } else {
            h.push_str("<table><tr><th>#</th><th class=l>op</th><th class=l>why</th></tr>\n");
            for o in self.ops.iter().filter(|o| !o.int8) {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td class=l>{}</td><td class=l>{}</td></tr>",
                    o.index,
                    esc(&o.origin),
                    esc(o.float_reason.as_deref().unwrap_or("-"))
                );
            }
            h.push_str("</table>\n");
        }
        if !self.concat_requantized.is_empty() {
            h.push_str("<h2>Concatenations of different ranges</h2>\n<table><tr><th class=l>op</th><th class=l>narrow input (requantized)</th><th>range ratio</th></tr>\n");
            for (op, t, r) in &self.concat_requantized {
                let _ = writeln!(
                    h,
                    "<tr><td class=l>{}</td><td class=l>{}</td><td>{r:.1}</td></tr>",
                    esc(op),
                    esc(t)
                );
            }
            h.push_str("</table>\n");
        }

        h.push_str("<h2>All ops</h2>\n<table><tr><th>#</th><th class=l>op</th><th class=l>output</th><th>precision</th><th>SQNR dB</th><th>cosine</th><th>observed</th><th>int8 range</th></tr>\n");
        for o in &self.ops {
            let r = |v: Option<(f32, f32)>| {
                v.map(|(a, b)| format!("{a:.3} .. {b:.3}"))
                    .unwrap_or_else(|| "—".into())
            };
            let sq = o
                .sqnr_db
                .map(|v| {
                    if v < 20.0 {
                        format!("<span class=bad>{v:.1}</span>")
                    } else {
                        format!("{v:.1}")
                    }
                })
                .unwrap_or_else(|| "—".into());
            let _ = writeln!(
                h,
                "<tr{}><td>{}</td><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{sq}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if o.int8 { "" } else { " class=float" },
                o.index,
                esc(&o.origin),
                esc(&o.output),
                if o.int8 { "int8" } else { "float" },
                o.cosine.map(|c| format!("{c:.5}")).unwrap_or_else(|| "—".into()),
                r(o.observed),
                r(o.quantized)
            );
        }
        h.push_str("</table>\n</body></html>\n");
        h
    }

    fn sqnr_chart(&self) -> String {
        let rows: Vec<&OpRow> = self.ops.iter().filter(|o| o.sqnr_db.is_some()).collect();
        let (w, ht, pad) = (1000.0f64, 260.0f64, 40.0f64);
        let top = rows
            .iter()
            .filter_map(|o| o.sqnr_db)
            .fold(10.0f64, f64::max)
            .min(150.0)
            .ceil();
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"per-op SQNR\">\n"
        );
        axis_y(&mut s, pad, ht, w, 0.0, top, "dB", |v| v);
        let n = rows.len().max(1) as f64;
        let bw = (w - pad - 10.0) / n;
        for (k, o) in rows.iter().enumerate() {
            let v = o.sqnr_db.unwrap_or(0.0).clamp(0.0, top);
            let y = ht - pad - (ht - 2.0 * pad) * v / top;
            let color = if o.int8 { "#1f77b4" } else { "#ff7f0e" };
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{} {}: {:.1} dB</title></rect>",
                pad + k as f64 * bw,
                (bw * 0.85).max(0.5),
                (ht - pad - y).max(0.0),
                o.index,
                esc(&o.origin),
                o.sqnr_db.unwrap_or(0.0)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\">ops in execution order</text></svg>",
            w / 2.0,
            ht - 8.0
        );
        s
    }

    fn range_chart(&self) -> String {
        let slog = |v: f64| v.signum() * (1.0 + v.abs()).log10();
        let rows: Vec<&OpRow> = self.ops.iter().filter(|o| o.observed.is_some()).collect();
        let (w, ht, pad) = (1000.0f64, 300.0f64, 40.0f64);
        let mut lim = 0.5f64;
        for o in &rows {
            if let Some((a, b)) = o.observed {
                lim = lim.max(slog(a as f64).abs()).max(slog(b as f64).abs());
            }
        }
        let lim = lim.ceil();
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"activation ranges\">\n"
        );
        axis_y(&mut s, pad, ht, w, -lim, lim, "", |v| {
            v.signum() * (10f64.powf(v.abs()) - 1.0)
        });
        let y = |v: f64| ht - pad - (ht - 2.0 * pad) * (slog(v) + lim) / (2.0 * lim);
        let n = rows.len().max(1) as f64;
        let bw = (w - pad - 10.0) / n;
        for (k, o) in rows.iter().enumerate() {
            let x = pad + k as f64 * bw;
            if let Some((a, b)) = o.observed {
                let _ = writeln!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#bbb\"><title>{} observed {a:.3}..{b:.3}</title></rect>",
                    y(b as f64),
                    (bw * 0.85).max(0.5),
                    (y(a as f64) - y(b as f64)).max(0.5),
                    esc(&o.origin)
                );
            }
            if let Some((a, b)) = o.quantized {
                let _ = writeln!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#1f77b4\" fill-opacity=\"0.7\"><title>{} int8 {a:.3}..{b:.3}</title></rect>",
                    x + bw * 0.25,
                    y(b as f64),
                    (bw * 0.4).max(0.5),
                    (y(a as f64) - y(b as f64)).max(0.5),
                    esc(&o.origin)
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }

    fn weight_chart(&self) -> String {
        let (w, ht, pad) = (1000.0f64, 240.0f64, 40.0f64);
        if self.weights.is_empty() {
            return "<p>No weighted ops in int8.</p>\n".into();
        }
        let lg = |v: f32| (v.max(1e-6) as f64).log10();
        let lo = self
            .weights
            .iter()
            .map(|(_, x)| lg(x.absmax_min))
            .fold(f64::INFINITY, f64::min)
            .floor();
        let hi = self
            .weights
            .iter()
            .map(|(_, x)| lg(x.absmax_max))
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil()
            .max(lo + 1.0);
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{ht}\" viewBox=\"0 0 {w} {ht}\" role=\"img\" aria-label=\"weight ranges\">\n"
        );
        axis_y(&mut s, pad, ht, w, lo, hi, "", |v| 10f64.powf(v));
        let y = |v: f64| ht - pad - (ht - 2.0 * pad) * (v - lo) / (hi - lo);
        let n = self.weights.len() as f64;
        let bw = (w - pad - 10.0) / n;
        for (k, (origin, ws)) in self.weights.iter().enumerate() {
            let (a, b) = (y(lg(ws.absmax_min)), y(lg(ws.absmax_max)));
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{b:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#2ca02c\"><title>{}: {} channels, max |w| {:.4}..{:.4}, weight SQNR {:.1} dB</title></rect>",
                pad + k as f64 * bw,
                (bw * 0.8).max(0.5),
                (a - b).max(1.0),
                esc(origin),
                ws.channels,
                ws.absmax_min,
                ws.absmax_max,
                ws.sqnr_db
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Draws a left axis with 5 ticks from `lo` to `hi` (labels through `label`).
#[allow(clippy::too_many_arguments)]
fn axis_y(
    s: &mut String,
    pad: f64,
    ht: f64,
    w: f64,
    lo: f64,
    hi: f64,
    unit: &str,
    label: impl Fn(f64) -> f64,
) {
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let y = ht - pad - (ht - 2.0 * pad) * k as f64 / 4.0;
        let l = label(v);
        let text = if l.abs() >= 100.0 || l == 0.0 {
            format!("{l:.0}")
        } else if l.abs() >= 1.0 {
            format!("{l:.1}")
        } else {
            format!("{l:.3}")
        };
        let _ = writeln!(
            s,
            "<line x1=\"{pad}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{text}{unit}</text>",
            w - 10.0,
            pad - 4.0,
            y + 3.0
        );
    }
}
