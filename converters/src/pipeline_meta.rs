//! Pipeline metadata: turns `--detector` / `--detector-spec` / `--preprocess`
//! / `--labels` into JSON entries of the package (`ferrite.detector`,
//! `ferrite.preprocess`), after checking the spec against the graph's input
//! and output shapes, so that a spec that does not fit the model fails here,
//! on the host, not on the device.

use anyhow::{bail, Context, Result};
use ferrite_pipelines::spec::{
    DecodedSpec, DetectorSpec, Head, ModelShapes, PreprocessSpec, META_DETECTOR, META_PREPROCESS,
};
use ferrite_runtime::format::meta_kind;
use ferrite_runtime::OpCode;

use crate::{ConvertOptions, Graph};

/// Whether `options` asks for any pipeline metadata.
pub fn requested(options: &ConvertOptions) -> bool {
    options.detector.is_some()
        || options.detector_spec.is_some()
        || options.preprocess.is_some()
        || options.labels.is_some()
}

/// The detector spec `options` describe (preset or TOML file, with
/// `--preprocess` and `--labels` overriding its parts), or `None` when no
/// detector is asked for.
pub fn detector_spec(options: &ConvertOptions) -> Result<Option<DetectorSpec>> {
    let mut spec = match (&options.detector, &options.detector_spec) {
        (Some(_), Some(_)) => bail!("give either --detector or --detector-spec, not both"),
        (Some(name), None) => DetectorSpec::preset(name).map_err(anyhow::Error::msg)?,
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read detector spec {}", path.display()))?;
            DetectorSpec::from_toml(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("invalid detector spec {}", path.display()))?
        }
        (None, None) => return Ok(None),
    };
    if let Some(p) = &options.preprocess {
        spec.preprocess =
            PreprocessSpec::parse_flag(p, Some(&spec.preprocess)).map_err(anyhow::Error::msg)?;
    }
    if let Some(path) = &options.labels {
        spec.labels = read_labels(path)?;
    }
    spec.validate().map_err(anyhow::Error::msg)?;
    Ok(Some(spec))
}

/// The pre-processing `options` declare for `graph`: `detector`'s (the
/// spec [`detector_spec`] made, with `--preprocess` already applied), or
/// `--preprocess` over the defaults for the graph's input (so an image
/// model's `resize=` may be left out); `None` when neither is given. The
/// package stores it, and the quantizer calibrates from images with it.
pub fn preprocess_spec(
    options: &ConvertOptions,
    detector: Option<&DetectorSpec>,
    graph: &Graph,
) -> Result<Option<PreprocessSpec>> {
    if let Some(spec) = detector {
        return Ok(Some(spec.preprocess.clone()));
    }
    let Some(p) = &options.preprocess else {
        return Ok(None);
    };
    let base = match graph.inputs.as_slice() {
        [i] => PreprocessSpec::for_input(&graph.tensors[*i].shape),
        _ => None,
    };
    PreprocessSpec::parse_flag(p, base.as_ref())
        .map(Some)
        .map_err(anyhow::Error::msg)
}

/// Reads a labels file: one label per line, blank lines at the end ignored.
pub fn read_labels(path: &std::path::Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read labels file {}", path.display()))?;
    let mut labels: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    while labels.last().is_some_and(|l| l.is_empty()) {
        labels.pop();
    }
    if labels.is_empty() {
        bail!("labels file {} has no labels", path.display());
    }
    Ok(labels)
}

/// The graph's single input shape and its output shapes.
fn shapes(graph: &Graph) -> Result<ModelShapes> {
    let input = match graph.inputs.as_slice() {
        [i] => graph.tensors[*i].shape.clone(),
        other => bail!(
            "pre-processing needs a model with one image input; this one has {}",
            other.len()
        ),
    };
    Ok(ModelShapes {
        input,
        outputs: graph
            .outputs
            .iter()
            .map(|&o| graph.tensors[o].shape.clone())
            .collect(),
    })
}

/// When the graph's outputs come from TFLite's SSD post-processing op, checks
/// that a `[decoded]` spec names them in the op's order: classes and scores
/// have the same shape, so a swap would pass the shape check and silently
/// read class ids as scores.
fn check_decoded_order(graph: &Graph, d: &DecodedSpec) -> Result<()> {
    let producer = |t: usize| graph.nodes.iter().find(|n| n.outputs.contains(&t));
    // Output index → which part of the op's packed result it is (0 boxes,
    // 1 classes, 2 scores, 3 count), through the importer's SLICE + RESHAPE.
    let part = |o: usize| -> Option<usize> {
        let reshape = producer(o).filter(|n| n.code == OpCode::Reshape)?;
        let slice = producer((*reshape.inputs.first()?)?).filter(|n| n.code == OpCode::Slice)?;
        let op = producer((*slice.inputs.first()?)?)
            .filter(|n| n.code == OpCode::DetectionPostprocess)?;
        let slots = (i64::from(*op.attrs.first()?) * i64::from(*op.attrs.get(1)?)) as usize;
        match *slice.attrs.get(1)? as usize {
            0 => Some(0),
            s if s == 4 * slots => Some(1),
            s if s == 5 * slots => Some(2),
            s if s == 6 * slots => Some(3),
            _ => None,
        }
    };
    let names = ["boxes", "classes", "scores", "count"];
    let declared = [
        d.boxes_output,
        d.classes_output,
        d.scores_output,
        d.count_output,
    ];
    let Some(actual) = (0..graph.outputs.len())
        .map(|i| part(graph.outputs[i]).map(|p| (p, i)))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(()); // not the op's outputs: nothing to check against
    };
    for &(p, i) in &actual {
        if declared[p] != i {
            let order: Vec<String> = (0..4)
                .map(|q| {
                    let at = actual.iter().find(|&&(r, _)| r == q);
                    let at = at.map_or("none".into(), |&(_, j)| j.to_string());
                    format!("{}_output = {at}", names[q])
                })
                .collect();
            bail!(
                "decoded: {}_output is {} but the model's {} are output {i} (the op's outputs: {})",
                names[p],
                declared[p],
                names[p],
                order.join(", ")
            );
        }
    }
    Ok(())
}

/// Validates the requested pipeline metadata against `graph` and stores it.
/// Errors name the flag and what does not fit (e.g. "decode: boxes (output 0)
/// should be [1, 896, 16] but the model's is [1, 100, 4]").
pub fn apply(graph: &mut Graph, options: &ConvertOptions) -> Result<()> {
    let shapes = shapes(graph)?;
    if let Some(spec) = detector_spec(options)? {
        let what = match (&options.detector, &options.detector_spec) {
            (Some(n), _) => format!("--detector {n}"),
            (_, Some(p)) => format!("--detector-spec {}", p.display()),
            _ => unreachable!("detector_spec returned a spec"),
        };
        spec.check_model(&shapes)
            .map_err(anyhow::Error::msg)
            .and_then(|()| match spec.head().map_err(anyhow::Error::msg)? {
                Head::Decoded(d) => check_decoded_order(graph, d),
                Head::Ssd { .. } => Ok(()),
            })
            .with_context(|| format!("{what} does not fit this model"))?;
        let json = serde_json::to_vec(&spec)?;
        graph.set_meta(META_DETECTOR, meta_kind::JSON, json);
        graph.set_meta(
            META_PREPROCESS,
            meta_kind::JSON,
            serde_json::to_vec(&spec.preprocess)?,
        );
    } else if let Some(pre) = preprocess_spec(options, None, graph)? {
        let p = options.preprocess.as_deref().unwrap_or_default();
        let want = pre.input_shape();
        if shapes.input != want {
            bail!(
                "--preprocess {p}: the model's input is {:?}, not {want:?}",
                shapes.input
            );
        }
        graph.set_meta(META_PREPROCESS, meta_kind::JSON, serde_json::to_vec(&pre)?);
    } else if options.labels.is_some() {
        bail!("--labels needs --detector or --detector-spec");
    }
    Ok(())
}
