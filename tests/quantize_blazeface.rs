//! Post-training int8 quantization end to end, on BlazeFace short-range
//! (models/fixtures) with calibration crops made from the committed
//! astronaut photo: faces found by the int8 model equal the float model's,
//! the report and quant.json are written, and --keep-float, --min-sqnr and
//! --io int8 do what they say.

use std::path::{Path, PathBuf};

use ferrite::npy::{self, Array};
use ferrite_convert::quantize::calib;
use ferrite_convert::{ConvertOptions, QuantizeOptions};
use ferrite_pipelines::spec::PreprocessSpec;
use ferrite_runtime::{DType, Model, Options, Session};

const FACE: &str = "models/fixtures/face_detection_short_range.tflite";
const PHOTO: &str = "models/fixtures/astronaut_256.jpg";
/// Faces scoring at least this (either model) must match; below it a face
/// sits close enough to the 0.5 threshold that int8 noise may flip it.
const CLEAR: f32 = 0.65;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The photo at 256x256 in [-1, 1], NHWC.
fn photo() -> Vec<f32> {
    let pre = PreprocessSpec::parse_flag("resize=256x256,scale=1/127.5,offset=-1", None).unwrap();
    calib::read_image(&root().join(PHOTO), &[1, 256, 256, 3], Some(&pre))
        .unwrap()
        .data
}

/// A `side`-pixel crop at (x0, y0), optionally mirrored, resampled
/// (bilinear) to 128x128.
fn crop(img: &[f32], x0: usize, y0: usize, side: usize, flip: bool) -> Vec<f32> {
    let mut out = vec![0f32; 128 * 128 * 3];
    let s = side as f32 / 128.0;
    for y in 0..128 {
        for x in 0..128 {
            let fx = ((x as f32 + 0.5) * s - 0.5).clamp(0.0, side as f32 - 1.0);
            let fy = ((y as f32 + 0.5) * s - 0.5).clamp(0.0, side as f32 - 1.0);
            let (ix, iy) = (fx as usize, fy as usize);
            let (jx, jy) = ((ix + 1).min(side - 1), (iy + 1).min(side - 1));
            let (ax, ay) = (fx - ix as f32, fy - iy as f32);
            let ox = if flip { 127 - x } else { x };
            for c in 0..3 {
                let at = |px: usize, py: usize| img[((y0 + py) * 256 + x0 + px) * 3 + c];
                let v = at(ix, iy) * (1.0 - ax) * (1.0 - ay)
                    + at(jx, iy) * ax * (1.0 - ay)
                    + at(ix, jy) * (1.0 - ax) * ay
                    + at(jx, jy) * ax * ay;
                out[(y * 128 + ox) * 3 + c] = v;
            }
        }
    }
    out
}

/// Crop boxes: a deterministic spread of sizes and positions.
fn boxes(seed: u64, n: usize) -> Vec<(usize, usize, usize, bool)> {
    let mut s = seed;
    let mut next = |m: usize| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as usize) % m.max(1)
    };
    (0..n)
        .map(|_| {
            let side = 140 + next(117);
            let (x0, y0) = (next(256 - side + 1), next(256 - side + 1));
            (x0, y0, side, next(2) == 1)
        })
        .collect()
}

fn write_npy(path: &Path, data: &[f32]) {
    let a = Array {
        dtype: DType::F32,
        shape: vec![1, 128, 128, 3],
        data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    };
    npy::write(path, &a).unwrap();
}

/// A calibration folder: 32 calibration crops then 8 held-out ones.
fn calib_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrite-q-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let img = photo();
    for (k, (x, y, s, f)) in boxes(1, 40).into_iter().enumerate() {
        write_npy(&dir.join(format!("s{k:03}.npy")), &crop(&img, x, y, s, f));
    }
    dir
}

/// `percentile` on 32 samples (the rest held out), the other options the
/// CLI's defaults (equalization, GPTQ, bias correction).
fn options(dir: &Path) -> QuantizeOptions {
    QuantizeOptions {
        calib: dir.to_path_buf(),
        method: "percentile".into(),
        samples: Some(32),
        ..Default::default()
    }
}

fn quantize(q: QuantizeOptions) -> ferrite_convert::Converted {
    let src = std::fs::read(root().join(FACE)).unwrap();
    let opts = ConvertOptions {
        quantize: Some(q),
        ..Default::default()
    };
    ferrite_convert::convert_with(&src, &opts).unwrap_or_else(|e| panic!("{e:#}"))
}

fn float_model() -> Model<'static> {
    let src = std::fs::read(root().join(FACE)).unwrap();
    Model::from_vec(&ferrite_convert::convert(&src).unwrap().bytes).unwrap()
}

/// (boxes [896*16], scores [896]) for one input.
fn run(model: &Model<'_>, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut s = Session::new(model, Options::default()).unwrap();
    s.set_input_f32(0, x).unwrap();
    s.invoke().unwrap();
    (
        s.output_f32(0).unwrap().to_vec(),
        s.output_f32(1).unwrap().to_vec(),
    )
}

/// MediaPipe's short-range anchors: 16x16 cells x 2, then 8x8 cells x 6.
fn anchors() -> Vec<(f32, f32)> {
    let mut a = Vec::new();
    for (fm, per) in [(16usize, 2usize), (8, 6)] {
        for y in 0..fm {
            for x in 0..fm {
                for _ in 0..per {
                    a.push(((x as f32 + 0.5) / fm as f32, (y as f32 + 0.5) / fm as f32));
                }
            }
        }
    }
    a
}

type Face = (f32, [f32; 4]);

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let i = w * h;
    i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)
}

/// Faces with score > 0.5 after greedy NMS.
fn faces(boxes: &[f32], scores: &[f32]) -> Vec<Face> {
    let an = anchors();
    let mut c: Vec<Face> = (0..896)
        .filter_map(|i| {
            let s = 1.0 / (1.0 + (-scores[i].clamp(-100.0, 100.0)).exp());
            (s > 0.5).then(|| {
                let b = &boxes[i * 16..i * 16 + 4];
                let (cx, cy) = (b[0] / 128.0 + an[i].0, b[1] / 128.0 + an[i].1);
                let (w, h) = (b[2] / 128.0, b[3] / 128.0);
                (s, [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0])
            })
        })
        .collect();
    c.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut keep: Vec<Face> = Vec::new();
    for f in c {
        if keep.iter().all(|k| iou(&k.1, &f.1) < 0.3) {
            keep.push(f);
        }
    }
    keep
}

fn sqnr(r: &[f32], q: &[f32]) -> f64 {
    let s: f64 = r.iter().map(|&v| (v as f64).powi(2)).sum();
    let e: f64 = r
        .iter()
        .zip(q)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    10.0 * (s / e).log10()
}

#[test]
fn int8_blazeface_finds_the_same_faces_as_float() {
    let dir = calib_dir("faces");
    let report = dir.join("report").join("face.html");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    let mut q = options(&dir);
    q.report = Some(report.clone());
    q.min_sqnr = Some(15.0);
    let c = quantize(q);
    let summary = c.summary.clone().expect("a summary");
    assert!(summary.contains("Quantized"), "{summary}");
    let qm = Model::from_vec(&c.bytes).unwrap();
    let fm = float_model();
    // Evaluation crops: a different stream from the calibration crops.
    let img = photo();
    let mut total_faces = 0;
    let mut ious = Vec::new();
    let (mut sb, mut sq) = (Vec::new(), Vec::new());
    let (mut rb, mut rs) = (Vec::new(), Vec::new());
    for (x, y, s, f) in boxes(99, 24) {
        let input = crop(&img, x, y, s, f);
        let (fb, fs) = run(&fm, &input);
        let (qb, qs) = run(&qm, &input);
        let (ff, qf) = (faces(&fb, &fs), faces(&qb, &qs));
        // Every clear face (score >= CLEAR in either model) is found by the
        // other with IoU >= 0.9; faces scoring near the 0.5 threshold may flip.
        for (a, b, what) in [
            (&ff, &qf, "float face missing in int8"),
            (&qf, &ff, "int8 face missing in float"),
        ] {
            for f in a.iter().filter(|f| f.0 >= CLEAR) {
                let best = b.iter().map(|g| iou(&f.1, &g.1)).fold(0f32, f32::max);
                assert!(best >= 0.9, "crop {x},{y},{s},{f:?}: {what}: IoU {best}");
            }
        }
        ious.extend(
            ff.iter()
                .map(|a| qf.iter().map(|b| iou(&a.1, &b.1)).fold(0f32, f32::max)),
        );
        total_faces += ff.len();
        rb.extend(fb);
        rs.extend(fs);
        sb.extend(qb);
        sq.extend(qs);
    }
    assert!(total_faces >= 10, "only {total_faces} faces in the crops");
    eprintln!("float faces {total_faces}, best IoU per float face: {ious:?}");
    let (box_db, score_db) = (sqnr(&rb, &sb), sqnr(&rs, &sq));
    eprintln!("BlazeFace int8: box SQNR {box_db:.1} dB, score SQNR {score_db:.1} dB");
    assert!(box_db > 15.0 && score_db > 9.0, "{box_db} {score_db}");

    // The report: self-contained HTML with SVG charts, and quant.json.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && html.contains("Per-op SQNR"));
    // Self-contained: nothing to fetch, nothing to run.
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.with_file_name("quant.json")).unwrap())
            .unwrap();
    let ops = json["ops"].as_array().unwrap();
    assert!(ops.len() > 50, "{} ops", ops.len());
    // GPTQ rounded every conv and depthwise layer (37 in BlazeFace, less
    // any --min-sqnr kept float).
    let gptq = json["gptq_layers"].as_u64().unwrap();
    assert!(gptq >= 30, "GPTQ rounded {gptq} layers");
    eprintln!("bias correction applied: {}", json["bias_correction"]);
    // The score concat joins heads of very different ranges: kept float.
    let concat = ops
        .iter()
        .find(|o| o["op"] == "CONCATENATION" && o["precision"] == "float")
        .expect("a float concat");
    assert!(concat["float_reason"]
        .as_str()
        .unwrap()
        .contains("concat trap"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keep_float_min_sqnr_and_int8_io() {
    let dir = calib_dir("options");
    // --keep-float by source op index.
    let mut q = options(&dir);
    q.keep_float = vec!["2".into()];
    let c = quantize(q);
    let m = Model::from_vec(&c.bytes).unwrap();
    let meta = m.metadata("quantization").expect("quantization metadata");
    let j: serde_json::Value = serde_json::from_slice(&meta.value).unwrap();
    let floats = j["float_ops"].as_array().unwrap();
    assert!(floats
        .iter()
        .any(|f| f["origin"] == "op 2 (CONV_2D)" && f["reason"] == "--keep-float 2"));
    let s = Session::new(&m, Options::default()).unwrap();
    assert!(s.kernel_names().iter().any(|k| k.contains("f32")));

    // --min-sqnr: every op left in int8 meets the threshold on the held-out samples.
    let report = dir.join("r.html");
    let mut q = options(&dir);
    q.min_sqnr = Some(22.0);
    q.report = Some(report.clone());
    quantize(q);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("quant.json")).unwrap()).unwrap();
    let mut kept = 0;
    for o in json["ops"].as_array().unwrap() {
        if o["precision"] == "float" {
            kept += 1;
        }
    }
    assert!(kept > 1, "a 22 dB floor keeps some ops float");

    // --io int8 exposes int8 tensors.
    let mut q = options(&dir);
    q.int8_io = true;
    let c = quantize(q);
    let m = Model::from_vec(&c.bytes).unwrap();
    let def = m.def();
    assert_eq!(def.tensors[def.inputs[0]].dtype, DType::I8);
    assert!(def
        .outputs
        .iter()
        .all(|&o| def.tensors[o].dtype == DType::I8));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn keep_float_naming_nothing_is_an_error() {
    let dir = calib_dir("keepbad");
    let mut q = options(&dir);
    q.keep_float = vec!["no_such_op".into()];
    let src = std::fs::read(root().join(FACE)).unwrap();
    let opts = ConvertOptions {
        quantize: Some(q),
        ..Default::default()
    };
    let e = ferrite_convert::convert_with(&src, &opts).err().unwrap();
    assert!(
        format!("{e:#}").contains("--keep-float no_such_op"),
        "{e:#}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--calib-method auto` (the default) tries every method, keeps the one
/// whose outputs are closest to float, reports the trials, and builds the
/// same package as naming that method outright.
#[test]
fn auto_keeps_the_method_closest_to_float() {
    let dir = calib_dir("auto");
    let report = dir.join("r.html");
    let mut q = options(&dir);
    q.method = "auto".into();
    q.report = Some(report.clone());
    let auto = quantize(q);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("quant.json")).unwrap()).unwrap();
    let trials = json["method_trials"].as_array().unwrap();
    let names: Vec<&str> = trials
        .iter()
        .map(|t| t["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["percentile=99.99", "avgminmax", "mse", "entropy", "minmax"]
    );
    let chosen = json["method"].as_str().unwrap();
    let db = |t: &serde_json::Value| t["sqnr_db"].as_f64().unwrap();
    let kept: Vec<&serde_json::Value> = trials.iter().filter(|t| t["kept"] == true).collect();
    assert_eq!(kept.len(), 1, "{trials:?}");
    assert_eq!(kept[0]["method"], chosen);
    assert!(trials.iter().all(|t| db(kept[0]) >= db(t)), "{trials:?}");
    let summary = auto.summary.unwrap();
    assert!(
        summary.contains(&format!("{chosen} method chosen by auto"))
            && summary.contains("Methods tried by auto"),
        "{summary}"
    );
    // Naming the chosen method builds the same package.
    let mut q = options(&dir);
    q.method = chosen.into();
    let fixed = quantize(q);
    assert!(
        fixed.bytes == auto.bytes,
        "auto ({chosen}) differs from --calib-method {chosen}"
    );
    assert!(!fixed.summary.unwrap().contains("by auto"));
    let _ = std::fs::remove_dir_all(&dir);
}
