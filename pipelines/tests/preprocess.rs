//! The fused pre-processing pass against a straightforward one (decode the
//! whole frame to a float RGB image, resize it, normalize it), from RGB8,
//! YUYV, NV12 and a decoded JPEG, for both resize modes and both sampling
//! conventions, into float (within 1e-5) and int8 (within one quantization
//! step) inputs.

use ferrite_pipelines::preprocess::{Frame, InputTensor, PixelFormat, Resampler};
use ferrite_pipelines::spec::{ColorOrder, Coordinates, Layout, PreprocessSpec, ResizeMode};
use ferrite_pipelines::{image_io, Error};

/// A deterministic test picture: smooth gradients plus a hard-edged block.
fn picture(w: usize, h: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let block = (x / 7 + y / 5) % 2 == 0;
            v.push((x * 255 / w.max(1)) as u8);
            v.push((y * 255 / h.max(1)) as u8);
            v.push(if block { 230 } else { ((x * y) % 256) as u8 });
        }
    }
    v
}

fn rgb_to_yuv(p: &[u8]) -> (f32, f32, f32) {
    let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
    let y = 16.0 + 0.256788 * r + 0.504129 * g + 0.097906 * b;
    let u = 128.0 - 0.148223 * r - 0.290993 * g + 0.439216 * b;
    let v = 128.0 + 0.439216 * r - 0.367788 * g - 0.071427 * b;
    (y, u, v)
}

fn clamp_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

fn to_yuyv(rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h * 2);
    for y in 0..h {
        for x in (0..w).step_by(2) {
            let a = rgb_to_yuv(&rgb[(y * w + x) * 3..]);
            let b = rgb_to_yuv(&rgb[(y * w + x + 1) * 3..]);
            out.extend([
                clamp_u8(a.0),
                clamp_u8((a.1 + b.1) / 2.0),
                clamp_u8(b.0),
                clamp_u8((a.2 + b.2) / 2.0),
            ]);
        }
    }
    out
}

fn to_nv12(rgb: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut out = vec![0u8; w * h * 3 / 2];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = clamp_u8(rgb_to_yuv(&rgb[(y * w + x) * 3..]).0);
        }
    }
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let mut u = 0.0;
            let mut v = 0.0;
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let p = rgb_to_yuv(&rgb[((y + dy) * w + x + dx) * 3..]);
                u += p.1 / 4.0;
                v += p.2 / 4.0;
            }
            let o = w * h + (y / 2) * w + x;
            out[o] = clamp_u8(u);
            out[o + 1] = clamp_u8(v);
        }
    }
    out
}

/// Straightforward decode: every pixel to float RGB (BT.601 limited range for YUV).
fn decode_float(f: &Frame<'_>) -> Vec<[f32; 3]> {
    let conv = |y: u8, u: u8, v: u8| {
        let c = 1.164383 * (y as f32 - 16.0);
        let d = u as f32 - 128.0;
        let e = v as f32 - 128.0;
        [
            (c + 1.596027 * e).clamp(0.0, 255.0),
            (c - 0.391762 * d - 0.812968 * e).clamp(0.0, 255.0),
            (c + 2.017232 * d).clamp(0.0, 255.0),
        ]
    };
    let (w, h) = (f.width, f.height);
    let mut img = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            img.push(match f.format {
                PixelFormat::Rgb8 => {
                    let p = &f.data[y * f.stride + x * 3..];
                    [p[0] as f32, p[1] as f32, p[2] as f32]
                }
                PixelFormat::Yuyv => {
                    let p = &f.data[y * f.stride + (x / 2) * 4..];
                    conv(if x % 2 == 0 { p[0] } else { p[2] }, p[1], p[3])
                }
                PixelFormat::Nv12 => {
                    let uv = &f.data[h * f.stride + (y / 2) * f.stride + (x / 2) * 2..];
                    conv(f.data[y * f.stride + x], uv[0], uv[1])
                }
            });
        }
    }
    img
}

/// Straightforward resize + normalize of a float image, written from the
/// conventions' definitions.
fn reference(spec: &PreprocessSpec, img: &[[f32; 3]], sw: usize, sh: usize) -> Vec<f32> {
    let (dw, dh) = (spec.width as f32, spec.height as f32);
    let (sx, sy, px, py) = match spec.resize {
        ResizeMode::Stretch => (dw / sw as f32, dh / sh as f32, 0.0, 0.0),
        ResizeMode::Letterbox => {
            let s = (dw / sw as f32).min(dh / sh as f32);
            (s, s, (dw - sw as f32 * s) / 2.0, (dh - sh as f32 * s) / 2.0)
        }
    };
    // Value of source pixel (x, y), padding outside.
    let at = |x: i64, y: i64, c: usize| -> f32 {
        if x < 0 || y < 0 || x >= sw as i64 || y >= sh as i64 {
            spec.pad[c]
        } else {
            img[y as usize * sw + x as usize][c]
        }
    };
    let mut out = vec![0.0f32; spec.width * spec.height * 3];
    for oy in 0..spec.height {
        for ox in 0..spec.width {
            let mut rgb = [0.0f32; 3];
            for (c, v) in rgb.iter_mut().enumerate() {
                *v = match spec.coordinates {
                    Coordinates::HalfPixel => {
                        let u = (ox as f32 + 0.5 - px) / sx;
                        let t = (oy as f32 + 0.5 - py) / sy;
                        if u < 0.0 || t < 0.0 || u >= sw as f32 || t >= sh as f32 {
                            spec.pad[c]
                        } else {
                            let fx = (u - 0.5).clamp(0.0, (sw - 1) as f32);
                            let fy = (t - 0.5).clamp(0.0, (sh - 1) as f32);
                            let (x0, y0) = (fx.floor() as i64, fy.floor() as i64);
                            let (x1, y1) =
                                ((x0 + 1).min(sw as i64 - 1), (y0 + 1).min(sh as i64 - 1));
                            let (wx, wy) = (fx - x0 as f32, fy - y0 as f32);
                            let top = at(x0, y0, c) * (1.0 - wx) + at(x1, y0, c) * wx;
                            let bot = at(x0, y1, c) * (1.0 - wx) + at(x1, y1, c) * wx;
                            top * (1.0 - wy) + bot * wy
                        }
                    }
                    Coordinates::Asymmetric | Coordinates::OpencvWarp => {
                        let fx = (ox as f32 - px) / sx;
                        let fy = (oy as f32 - py) / sy;
                        let (x0, y0) = (fx.floor() as i64, fy.floor() as i64);
                        let (wx, wy) = (fx - x0 as f32, fy - y0 as f32);
                        let top = at(x0, y0, c) * (1.0 - wx) + at(x0 + 1, y0, c) * wx;
                        let bot = at(x0, y1(y0), c) * (1.0 - wx) + at(x0 + 1, y1(y0), c) * wx;
                        top * (1.0 - wy) + bot * wy
                    }
                };
            }
            if spec.color == ColorOrder::Bgr {
                rgb.swap(0, 2);
            }
            for (c, v) in rgb.into_iter().enumerate() {
                let i = match spec.layout {
                    Layout::Nhwc => (oy * spec.width + ox) * 3 + c,
                    Layout::Nchw => (c * spec.height + oy) * spec.width + ox,
                };
                out[i] = v * spec.scale[c] + spec.offset[c];
            }
        }
    }
    out
}

fn y1(y0: i64) -> i64 {
    y0 + 1
}

fn specs() -> Vec<PreprocessSpec> {
    let base = PreprocessSpec::parse_flag("resize=48x64,scale=2/255,offset=-1", None).unwrap();
    let mut out = Vec::new();
    for resize in [ResizeMode::Stretch, ResizeMode::Letterbox] {
        for coordinates in [Coordinates::HalfPixel, Coordinates::Asymmetric] {
            out.push(PreprocessSpec {
                resize,
                coordinates,
                ..base.clone()
            });
        }
    }
    // ImageNet-style normalization, BGR, NCHW, grey padding.
    out.push(
        PreprocessSpec::parse_flag(
            "resize=40x40,fit=letterbox,pad=114,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,bgr,nchw",
            None,
        )
        .unwrap(),
    );
    out
}

fn check_frame(frame: &Frame<'_>, what: &str) {
    let img = decode_float(frame);
    for spec in specs() {
        let want = reference(&spec, &img, frame.width, frame.height);
        let r = Resampler::new(&spec, frame.width, frame.height).unwrap();
        let mut got = vec![0.0f32; want.len()];
        r.run(&spec, frame, &mut InputTensor::F32(&mut got))
            .unwrap();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= 1e-5,
            "{what} {:?} {:?}: float differs by {worst}",
            spec.resize,
            spec.coordinates
        );
        // int8: within one quantization step of the quantized reference.
        let (scale, zp) = (0.0157, -3);
        let mut q = vec![0i8; want.len()];
        r.run(
            &spec,
            frame,
            &mut InputTensor::I8 {
                data: &mut q,
                scale,
                zero_point: zp,
            },
        )
        .unwrap();
        for (g, w) in q.iter().zip(&want) {
            let wq = ((w / scale).round() as i32 + zp).clamp(-128, 127);
            assert!(
                (*g as i32 - wq).abs() <= 1,
                "{what} {:?} {:?}: int8 {g} vs {wq}",
                spec.resize,
                spec.coordinates
            );
        }
    }
}

#[test]
fn fused_equals_straightforward_rgb8() {
    let (w, h) = (70, 52);
    let rgb = picture(w, h);
    check_frame(
        &Frame::packed(PixelFormat::Rgb8, w, h, &rgb).unwrap(),
        "RGB8",
    );
    // A padded stride.
    let mut padded = Vec::new();
    for row in rgb.chunks(w * 3) {
        padded.extend_from_slice(row);
        padded.extend_from_slice(&[7; 9]);
    }
    let f = Frame {
        format: PixelFormat::Rgb8,
        width: w,
        height: h,
        stride: w * 3 + 9,
        data: &padded,
    };
    check_frame(&f, "RGB8 with stride");
}

#[test]
fn fused_equals_straightforward_yuyv() {
    let (w, h) = (64, 50);
    let yuyv = to_yuyv(&picture(w, h), w, h);
    check_frame(
        &Frame::packed(PixelFormat::Yuyv, w, h, &yuyv).unwrap(),
        "YUYV",
    );
}

#[test]
fn fused_equals_straightforward_nv12() {
    let (w, h) = (62, 46);
    let nv12 = to_nv12(&picture(w, h), w, h);
    check_frame(
        &Frame::packed(PixelFormat::Nv12, w, h, &nv12).unwrap(),
        "NV12",
    );
}

#[test]
fn fused_equals_straightforward_jpeg() {
    let (w, h) = (81, 57);
    let img = image_io::RgbImage::from_raw(w as u32, h as u32, picture(w, h)).unwrap();
    let mut jpeg = Vec::new();
    image_io::encode_jpeg(&img, 90, &mut jpeg).unwrap();
    let decoded = image_io::decode(&jpeg, "test.jpg").unwrap();
    let f = Frame::packed(PixelFormat::Rgb8, w, h, decoded.as_raw()).unwrap();
    check_frame(&f, "JPEG");
}

#[test]
fn yuv_frames_decode_close_to_their_rgb_source() {
    // The YUV conversions themselves: a YUYV/NV12 frame made from an RGB
    // picture decodes back to within chroma-subsampling error of it.
    let (w, h) = (32, 32);
    let rgb: Vec<u8> = (0..w * h).flat_map(|_| [200u8, 120, 40]).collect();
    let yuyv = to_yuyv(&rgb, w, h);
    let f = Frame::packed(PixelFormat::Yuyv, w, h, &yuyv).unwrap();
    let p = f.rgb_at(5, 7);
    for (a, b) in p.iter().zip([200.0, 120.0, 40.0]) {
        assert!((a - b).abs() < 2.5, "{p:?}");
    }
}

#[test]
fn bad_frames_are_clear_errors() {
    let short = vec![0u8; 100];
    let e = Frame::packed(PixelFormat::Yuyv, 64, 48, &short).unwrap_err();
    assert!(matches!(e, Error::Frame(_)));
    assert!(e.to_string().contains("needs 6144 bytes, got 100"), "{e}");
    let e = Frame::packed(PixelFormat::Yuyv, 63, 48, &[0; 63 * 48 * 2]).unwrap_err();
    assert!(e.to_string().contains("must be even"), "{e}");
    let e = Frame::packed(PixelFormat::Rgb8, 0, 4, &[]).unwrap_err();
    assert!(e.to_string().contains("size"), "{e}");
    // A frame of another size than the taps were built for.
    let spec = PreprocessSpec::parse_flag("resize=8x8", None).unwrap();
    let r = Resampler::new(&spec, 16, 16).unwrap();
    let data = vec![0u8; 20 * 16 * 3];
    let f = Frame::packed(PixelFormat::Rgb8, 20, 16, &data).unwrap();
    let mut out = vec![0.0; 8 * 8 * 3];
    let e = r
        .run(&spec, &f, &mut InputTensor::F32(&mut out))
        .unwrap_err();
    assert!(e.to_string().contains("20x16"), "{e}");
    // An output buffer of the wrong size.
    let f = Frame::packed(PixelFormat::Rgb8, 16, 16, &data[..16 * 16 * 3]).unwrap();
    let mut small = vec![0.0; 10];
    let e = r
        .run(&spec, &f, &mut InputTensor::F32(&mut small))
        .unwrap_err();
    assert!(e.to_string().contains("holds 10 values"), "{e}");
}

#[test]
fn undecodable_images_are_clear_errors() {
    let e = image_io::decode(b"definitely not an image", "x.jpg").unwrap_err();
    assert!(e.to_string().contains("x.jpg: not a JPEG or PNG"), "{e}");
    let mut jpeg = Vec::new();
    let img = image_io::RgbImage::from_raw(16, 16, vec![9; 16 * 16 * 3]).unwrap();
    image_io::encode_jpeg(&img, 80, &mut jpeg).unwrap();
    jpeg.truncate(jpeg.len() / 3);
    let e = image_io::decode(&jpeg, "cut.jpg").unwrap_err();
    assert!(e.to_string().contains("cut.jpg"), "{e}");
}
