//! A corpus of malformed `.fer` and `.tflite` files: each must give an error
//! (or, for harmless changes, a model that still prepares), never a panic.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use ferrite_convert::ir::{Graph, Node, Tensor};
use ferrite_runtime::format::{self, CHECKSUM_FIELD, HEADER_LEN, SECTION_ENTRY_LEN};
use ferrite_runtime::{DType, Error, Model, OpCode, Options, Quant, Session};

/// Loads and prepares `bytes`; panics inside are caught and reported.
fn try_load(bytes: &[u8]) -> Result<Result<(), Error>, String> {
    catch_unwind(AssertUnwindSafe(|| {
        let model = Model::from_vec(bytes)?;
        let mut s = Session::new(&model, Options::default())?;
        s.invoke()
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or(p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Rewrites the checksum so that structural checks, not the CRC, must catch a change.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() >= HEADER_LEN {
        let crc = format::checksum(bytes);
        bytes[CHECKSUM_FIELD].copy_from_slice(&crc.to_le_bytes());
    }
}

fn sample_packages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let root = common::root();
    for name in [
        "conv_2d.i8.000",
        "depthwise_conv_2d.f32.001",
        "concatenation.i8.000",
        "split_v.f32.000",
        "reshape.i8.000",
        "mean.i8.000",
    ] {
        let src = std::fs::read(root.join(format!("tests/fixtures/ops/{name}.tflite"))).unwrap();
        out.push((
            name.to_string(),
            ferrite_convert::convert(&src).unwrap().bytes,
        ));
    }
    out
}

/// Section boundaries of a package: every offset where a section starts or ends.
fn boundaries(bytes: &[u8]) -> Vec<usize> {
    let n = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
    let mut b = vec![0, 8, 16, 24, 28, 32, HEADER_LEN];
    for i in 0..n {
        let e = HEADER_LEN + i * SECTION_ENTRY_LEN;
        let off = u64::from_le_bytes(bytes[e + 8..e + 16].try_into().unwrap()) as usize;
        let len = u64::from_le_bytes(bytes[e + 16..e + 24].try_into().unwrap()) as usize;
        b.extend([e, off, off + len, off + len / 2]);
    }
    b.sort_unstable();
    b.dedup();
    b
}

#[test]
fn truncated_packages_are_rejected() {
    for (name, bytes) in sample_packages() {
        for cut in boundaries(&bytes)
            .into_iter()
            .chain((0..bytes.len()).step_by(7))
        {
            if cut >= bytes.len() {
                continue;
            }
            let mut b = bytes[..cut].to_vec();
            // Also with the header's length and checksum fixed up, so the
            // section checks see the truncation.
            for fix in [false, true] {
                if fix && b.len() >= HEADER_LEN {
                    b[16..24].copy_from_slice(&(cut as u64).to_le_bytes());
                    reseal(&mut b);
                }
                match try_load(&b) {
                    Ok(Ok(())) => panic!("{name}: truncated at {cut} loaded"),
                    Ok(Err(_)) => {}
                    Err(p) => panic!("{name}: truncated at {cut} panicked: {p}"),
                }
            }
        }
    }
}

#[test]
fn bit_flips_never_panic() {
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut rejected = 0;
    let mut total = 0;
    for (name, bytes) in sample_packages() {
        for _ in 0..1500 {
            let mut b = bytes.clone();
            let flips = 1 + (next() % 3) as usize;
            for _ in 0..flips {
                let pos = (next() as usize) % b.len();
                b[pos] ^= 1 << (next() % 8);
            }
            // Unsealed flips must fail the checksum; sealed ones exercise the validators.
            if let Ok(Ok(())) = try_load(&b) {
                panic!("{name}: a bit flip passed the checksum");
            }
            reseal(&mut b);
            total += 1;
            match try_load(&b) {
                Ok(Err(_)) => rejected += 1,
                Ok(Ok(())) => {} // e.g. a flipped weight: still a valid model
                Err(p) => panic!("{name}: bit flip panicked: {p}"),
            }
        }
    }
    println!("{rejected} of {total} resealed mutations rejected, none panicked");
}

fn tensor(name: &str, shape: &[usize], data: Option<Vec<u8>>) -> Tensor {
    Tensor {
        name: name.into(),
        dtype: DType::F32,
        shape: shape.to_vec(),
        quant: Quant::None,
        data,
    }
}

fn relu(i: usize, o: usize) -> Node {
    Node {
        code: OpCode::Relu,
        attrs: vec![],
        inputs: vec![Some(i)],
        outputs: vec![o],
        origin: "test".into(),
    }
}

/// Writes a graph without the converter's checks, so invalid graphs reach the loader.
fn write_raw(g: &Graph) -> Vec<u8> {
    ferrite_convert::package::write(g).unwrap().0
}

#[test]
fn structural_corruptions_are_rejected() {
    // A valid two-op graph to corrupt.
    let base = || Graph {
        tensors: vec![
            tensor("x", &[1, 4], None),
            tensor("y", &[1, 4], None),
            tensor("z", &[1, 4], None),
        ],
        nodes: vec![relu(0, 1), relu(1, 2)],
        inputs: vec![0],
        outputs: vec![2],
        metadata: vec![],
        rounding: Default::default(),
        notes: vec![],
    };
    assert_eq!(try_load(&write_raw(&base())), Ok(Ok(())));

    let mut cases: Vec<(&str, Graph)> = Vec::new();
    let mut g = base();
    g.nodes.swap(0, 1); // reads y before anything writes it
    cases.push(("op reads a tensor written later (cycle)", g));
    let mut g = base();
    g.nodes[1].inputs[0] = Some(2); // z = relu(z)
    cases.push(("op reads its own output", g));
    let mut g = base();
    g.nodes[0].outputs[0] = 0; // writes the graph input
    cases.push(("op writes a graph input", g));
    let mut g = base();
    g.nodes[1].outputs[0] = 1; // y written twice
    cases.push(("tensor written twice", g));
    let mut g = base();
    g.tensors[1] = tensor("y", &[1, 4], Some(vec![0; 16]));
    cases.push(("op writes a constant", g));
    let mut g = base();
    g.nodes.pop();
    cases.push(("graph output never written", g));
    let mut g = base();
    g.tensors[2].shape = vec![1, 5];
    cases.push(("output shape disagrees with op", g));
    for (what, g) in cases {
        match try_load(&write_raw(&g)) {
            Ok(Err(e)) => println!("{what}: {e}"),
            Ok(Ok(())) => panic!("{what}: loaded"),
            Err(p) => panic!("{what}: panicked: {p}"),
        }
    }
}

/// Field-level corruptions of a real package, patched in place and resealed.
#[test]
fn field_corruptions_are_rejected() {
    let (_, bytes) = sample_packages().remove(0);
    let def = format::parse(&bytes).unwrap();
    let section = |kind: u32| -> (usize, usize) {
        let n = u32::from_le_bytes(bytes[24..28].try_into().unwrap()) as usize;
        (0..n)
            .map(|i| HEADER_LEN + i * SECTION_ENTRY_LEN)
            .find(|&e| u32::from_le_bytes(bytes[e..e + 4].try_into().unwrap()) == kind)
            .map(|e| {
                (
                    e,
                    u64::from_le_bytes(bytes[e + 8..e + 16].try_into().unwrap()) as usize,
                )
            })
            .unwrap()
    };
    let patch = |at: usize, v: &[u8]| -> Vec<u8> {
        let mut b = bytes.clone();
        b[at..at + v.len()].copy_from_slice(v);
        reseal(&mut b);
        b
    };
    let (plan_entry, plan) = section(format::section::PLAN);
    let (data_entry, data) = section(format::section::DATA);
    let (tens_entry, tensors) = section(format::section::TENSORS);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad magic", patch(0, b"FERRITX\0")),
        ("future version", patch(8, &99u32.to_le_bytes())),
        ("huge section count", patch(24, &u32::MAX.to_le_bytes())),
        (
            "section offset past the end",
            patch(plan_entry + 8, &u64::MAX.to_le_bytes()),
        ),
        (
            "section length past the end",
            patch(tens_entry + 16, &(1u64 << 40).to_le_bytes()),
        ),
        (
            "misaligned data section",
            patch(data_entry + 8, &((data + 4) as u64).to_le_bytes()),
        ),
        (
            "arena size absurd",
            patch(plan, &(1u64 << 62).to_le_bytes()),
        ),
        ("huge tensor count", patch(tensors, &u32::MAX.to_le_bytes())),
    ];
    // Every arena offset moved past the arena, and onto its neighbour.
    for (t, td) in def.tensors.iter().enumerate() {
        let at = plan + 12 + 8 * t;
        if !td.is_const() {
            cases.push((
                "arena offset outside the arena",
                patch(at, &((def.arena_bytes as u64) + 16).to_le_bytes()),
            ));
            cases.push(("misaligned arena offset", patch(at, &3u64.to_le_bytes())));
        }
    }
    // Overlapping live tensors: put every arena tensor at offset 0.
    let mut all_zero = bytes.clone();
    for (t, td) in def.tensors.iter().enumerate() {
        if !td.is_const() {
            all_zero[plan + 12 + 8 * t..plan + 20 + 8 * t].copy_from_slice(&0u64.to_le_bytes());
        }
    }
    reseal(&mut all_zero);
    cases.push(("live tensors overlap", all_zero));
    for (what, b) in cases {
        match try_load(&b) {
            Ok(Err(e)) => println!("{what}: {e}"),
            Ok(Ok(())) => panic!("{what}: loaded"),
            Err(p) => panic!("{what}: panicked: {p}"),
        }
    }
}

#[test]
fn header_flags_are_checked() {
    let (_, bytes) = sample_packages().remove(0);
    let with_flags = |flags: u32| {
        let mut b = bytes.clone();
        b[12..16].copy_from_slice(&flags.to_le_bytes());
        reseal(&mut b);
        b
    };
    // The two rounding rules load; unknown bits (a newer converter) are refused.
    use ferrite_runtime::Rounding;
    for (flags, want) in [
        (0, Rounding::FixedPoint),
        (1, Rounding::Float { uint8: false }),
        (3, Rounding::Float { uint8: true }),
    ] {
        assert_eq!(format::parse(&with_flags(flags)).unwrap().rounding, want);
    }
    for flags in [2, 4, 0x8000_0000] {
        let err = format::parse(&with_flags(flags)).unwrap_err().to_string();
        assert!(err.contains("header flags"), "{flags:#x}: {err}");
    }
}

#[test]
fn malformed_tflite_files_give_errors() {
    let root = common::root();
    let src =
        std::fs::read(root.join("models/fixtures/face_detection_short_range.tflite")).unwrap();
    let convert =
        |b: &[u8]| catch_unwind(AssertUnwindSafe(|| ferrite_convert::convert(b).map(|_| ())));
    let mut state = 12345u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        state >> 33
    };
    let mut rejected = 0;
    for i in 0..400 {
        let mut b = src.clone();
        if i % 2 == 0 {
            b.truncate((next() as usize) % src.len());
        } else {
            for _ in 0..4 {
                let p = (next() as usize) % b.len();
                b[p] = next() as u8;
            }
        }
        match convert(&b) {
            Ok(Err(_)) => rejected += 1,
            Ok(Ok(())) => {}
            Err(_) => panic!("mutation {i} panicked the converter"),
        }
    }
    println!("{rejected} of 400 mutated .tflite files rejected, none panicked");
    for bad in [
        &b""[..],
        b"TFL3",
        b"\0\0\0\0TFL3\0\0\0\0",
        b"not a model at all",
    ] {
        assert!(matches!(convert(bad), Ok(Err(_))));
    }
}

/// Regression: a fuzzed .tflite whose tensor shape multiplies past `usize`
/// overflowed the planner's size arithmetic; it must be a clear error.
#[test]
fn regression_fuzz_tflite_shape_overflow() {
    #[rustfmt::skip]
    let bytes: &[u8] = &[20, 0, 0, 0, 84, 70, 76, 51, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 158, 255, 255, 255, 44, 0, 0, 0, 16, 0, 0, 0, 48, 0, 0, 0, 52, 0, 0, 0, 3, 0, 0, 0, 17, 0, 0, 0, 102, 101, 114, 114, 105, 116, 101, 32, 111, 112, 32, 103, 111, 108, 100, 101, 110, 0, 0, 0, 2, 0, 0, 0, 4, 2, 0, 0, 216, 1, 0, 0, 1, 0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 16, 0, 0, 0, 12, 0, 10, 0, 9, 0, 0, 0, 0, 0, 4, 0, 12, 0, 0, 0, 54, 0, 0, 0, 0, 54, 14, 0, 24, 0, 20, 0, 16, 0, 12, 0, 8, 0, 4, 0, 14, 0, 0, 0, 20, 0, 0, 0, 44, 0, 0, 0, 24, 0, 0, 0, 28, 0, 0, 0, 40, 0, 0, 0, 4, 0, 0, 0, 109, 97, 105, 110, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 32, 0, 0, 0, 3, 0, 0, 0, 252, 0, 0, 0, 152, 0, 0, 0, 48, 0, 0, 0, 0, 0, 10, 0, 12, 0, 0, 0, 8, 0, 4, 0, 10, 0, 0, 0, 8, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 74, 255, 255, 255, 16, 0, 0, 0, 48, 0, 0, 0, 0, 0, 0, 9, 56, 0, 0, 0, 60, 255, 255, 255, 8, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 128, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 1, 0, 0, 0, 151, 198, 147, 59, 6, 0, 0, 0, 111, 117, 116, 112, 117, 116, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0, 0, 0, 14, 0, 24, 0, 20, 0, 19, 0, 12, 0, 8, 0, 4, 0, 14, 0, 0, 0, 20, 0, 0, 0, 48, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, 48, 0, 0, 0, 164, 255, 255, 255, 8, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 133, 112, 246, 59, 5, 0, 0, 0, 97, 108, 112, 104, 97, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0, 0, 0, 14, 0, 20, 0, 16, 0, 15, 0, 0, 0, 8, 0, 4, 0, 14, 0, 0, 0, 28, 0, 0, 0, 56, 0, 0, 0, 0, 0, 0, 9, 60, 0, 0, 0, 12, 0, 12, 0, 0, 0, 0, 0, 8, 0, 4, 0, 12, 0, 0, 0, 8, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 128, 255, 255, 255, 255, 255, 255, 255, 1, 0, 0, 0, 151, 198, 147, 59, 5, 0, 0, 0, 105, 110, 112, 117, 116, 0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 6, 0, 0, 0, 0, 0, 6, 0, 8, 0, 4, 0, 6, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, 227, 112, 16, 34, 28, 97, 14, 34, 248, 79, 83, 250, 241, 229, 109, 15, 50, 42, 0, 0, 0, 0, 0, 0, 4, 0, 4, 0, 4, 0, 0, 0];
    let result = catch_unwind(AssertUnwindSafe(|| {
        ferrite_convert::convert(bytes).map(|_| ())
    }));
    match result {
        Ok(Err(e)) => println!("rejected: {e:#}"),
        Ok(Ok(())) => panic!("the fuzzed model converted"),
        Err(_) => panic!("the converter panicked"),
    }
}

/// Regression: a fuzzed .tflite whose BROADCAST_TO targets 637534209
/// values made the importer allocate a 2.5 GB shape constant; it must be a
/// clear error naming the op.
#[test]
fn regression_fuzz_tflite_broadcast_to_huge_shape() {
    #[rustfmt::skip]
    let bytes: &[u8] = &[16, 0, 0, 0, 84, 70, 76, 51, 0, 0, 0, 0, 0, 0, 0, 0, 154, 255, 255, 255, 44, 0, 0, 0, 16, 0, 0, 0, 48, 0, 0, 0, 52, 0, 0, 0, 3, 0, 0, 0, 17, 0, 0, 0, 102, 101, 114, 114, 105, 116, 101, 32, 111, 112, 32, 103, 111, 108, 100, 101, 110, 0, 0, 0, 2, 0, 0, 0, 104, 1, 0, 0, 76, 1, 0, 0, 1, 0, 0, 0, 52, 0, 0, 0, 1, 0, 0, 0, 16, 0, 0, 0, 12, 0, 14, 0, 13, 0, 0, 0, 4, 0, 8, 0, 12, 0, 0, 0, 2, 0, 0, 0, 130, 0, 0, 0, 0, 127, 14, 0, 24, 0, 20, 0, 16, 0, 12, 0, 8, 0, 4, 0, 14, 0, 0, 0, 20, 0, 0, 0, 44, 0, 0, 0, 24, 0, 0, 0, 28, 0, 0, 0, 40, 0, 0, 0, 4, 0, 0, 0, 109, 97, 105, 110, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 36, 0, 0, 0, 3, 0, 0, 0, 168, 0, 0, 0, 112, 0, 0, 0, 64, 0, 0, 0, 0, 0, 14, 0, 20, 0, 0, 0, 16, 0, 12, 0, 11, 0, 4, 0, 14, 0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 104, 8, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 96, 255, 255, 255, 172, 255, 255, 255, 8, 0, 0, 0, 16, 0, 0, 0, 6, 0, 0, 0, 111, 117, 116, 112, 117, 116, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 12, 0, 20, 0, 16, 0, 15, 0, 8, 0, 4, 0, 12, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 16, 0, 0, 0, 5, 0, 0, 0, 115, 104, 97, 112, 101, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 12, 0, 12, 0, 8, 0, 0, 0, 0, 0, 4, 0, 12, 0, 0, 0, 8, 0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0, 105, 110, 112, 117, 116, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 6, 0, 8, 0, 4, 0, 6, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 38, 0, 0, 0, 0, 4, 0, 4, 0, 4, 0, 0, 0];
    match ferrite_convert::convert(bytes) {
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(msg.contains("BROADCAST_TO"), "{msg}");
        }
        Ok(_) => panic!("the fuzzed model converted"),
    }
}
