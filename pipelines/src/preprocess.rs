//! The fused pre-processing pass: camera frame (RGB8, YUYV, NV12) or decoded
//! image → resize (stretch or letterbox, bilinear) → colour order →
//! normalization → (quantization) → the model's input tensor, in one loop
//! over the output pixels with no intermediate image.
//!
//! A [`Resampler`] holds the per-column and per-row taps for one source size;
//! building it allocates, running it does not.

use crate::spec::{ColorOrder, Coordinates, Layout, PreprocessSpec, ResizeMode};
use crate::Error;

/// Pixel layout of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Packed 8-bit R, G, B.
    Rgb8,
    /// Packed YUV 4:2:2, `Y0 U Y1 V` per two pixels (V4L2 `YUYV`), BT.601
    /// limited range. Width must be even.
    Yuyv,
    /// A Y plane followed by an interleaved `U V` plane at half resolution
    /// (V4L2 `NV12`), BT.601 limited range. Width and height must be even.
    Nv12,
}

impl PixelFormat {
    /// Bytes per pixel of the first plane.
    fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb8 => 3,
            PixelFormat::Yuyv => 2,
            PixelFormat::Nv12 => 1,
        }
    }
}

/// A borrowed camera frame or decoded image.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next in the first plane (for NV12 also in the
    /// UV plane, which starts right after `height` rows of Y).
    pub stride: usize,
    pub data: &'a [u8],
}

impl<'a> Frame<'a> {
    /// A tightly packed frame (`stride = width * bytes per pixel`), checked
    /// like [`Frame::check`].
    pub fn packed(
        format: PixelFormat,
        width: usize,
        height: usize,
        data: &'a [u8],
    ) -> Result<Self, Error> {
        let f = Frame {
            format,
            width,
            height,
            stride: width.saturating_mul(format.bytes_per_pixel()),
            data,
        };
        f.check()?;
        Ok(f)
    }

    /// Bytes a frame of this format, size and stride needs.
    pub fn required_len(&self) -> Option<usize> {
        let rows = match self.format {
            PixelFormat::Nv12 => self.height.checked_add(self.height / 2)?,
            _ => self.height,
        };
        if rows == 0 {
            return Some(0);
        }
        let row = self.width.checked_mul(self.format.bytes_per_pixel())?;
        (rows - 1).checked_mul(self.stride)?.checked_add(row)
    }

    /// Checks that the size is non-zero (and even where the format needs it),
    /// the stride holds a row, and `data` holds every row.
    pub fn check(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Frame(m));
        if self.width == 0 || self.height == 0 || self.width > 1 << 15 || self.height > 1 << 15 {
            return bad(format!(
                "{:?} frame of {}x{}: size must be within 1..=32768",
                self.format, self.width, self.height
            ));
        }
        if matches!(self.format, PixelFormat::Yuyv | PixelFormat::Nv12) && self.width & 1 != 0 {
            return bad(format!(
                "{:?} frame width {} must be even",
                self.format, self.width
            ));
        }
        if self.format == PixelFormat::Nv12 && self.height & 1 != 0 {
            return bad(format!("NV12 frame height {} must be even", self.height));
        }
        if self.stride < self.width * self.format.bytes_per_pixel() {
            return bad(format!(
                "{:?} frame stride {} is shorter than a row of {} pixels",
                self.format, self.stride, self.width
            ));
        }
        let need = self.required_len().unwrap_or(usize::MAX);
        if self.data.len() < need {
            return bad(format!(
                "{:?} frame of {}x{} (stride {}) needs {} bytes, got {}",
                self.format,
                self.width,
                self.height,
                self.stride,
                need,
                self.data.len()
            ));
        }
        Ok(())
    }

    /// The pixel at (`x`, `y`) as R, G, B floats in 0..=255 (YUV converted
    /// with BT.601 limited-range coefficients, clamped). `x`, `y` must be in
    /// range and the frame checked.
    #[inline]
    pub fn rgb_at(&self, x: usize, y: usize) -> [f32; 3] {
        match self.format {
            PixelFormat::Rgb8 => {
                let i = y * self.stride + 3 * x;
                let p = &self.data[i..i + 3];
                [p[0] as f32, p[1] as f32, p[2] as f32]
            }
            PixelFormat::Yuyv => {
                let i = y * self.stride + 4 * (x / 2);
                let p = &self.data[i..i + 4];
                yuv_to_rgb(p[2 * (x & 1)], p[1], p[3])
            }
            PixelFormat::Nv12 => {
                let luma = self.data[y * self.stride + x];
                let uv = (self.height + y / 2) * self.stride + 2 * (x / 2);
                yuv_to_rgb(luma, self.data[uv], self.data[uv + 1])
            }
        }
    }
}

/// BT.601 limited-range YUV → RGB, each channel clamped to 0..=255.
#[inline]
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [f32; 3] {
    let c = 1.164_383 * (y as f32 - 16.0);
    let d = u as f32 - 128.0;
    let e = v as f32 - 128.0;
    [
        (c + 1.596_027 * e).clamp(0.0, 255.0),
        (c - 0.391_762 * d - 0.812_968 * e).clamp(0.0, 255.0),
        (c + 2.017_232 * d).clamp(0.0, 255.0),
    ]
}

/// Where the model input's pixels come from in a source image: the input
/// pixel centre `(x + 0.5, y + 0.5)` samples the source at
/// `((x + 0.5 - pad_x) / scale_x, (y + 0.5 - pad_y) / scale_y)` (pixel-edge
/// coordinates). Also maps detections back to source pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub src_width: usize,
    pub src_height: usize,
    pub dst_width: usize,
    pub dst_height: usize,
    pub scale_x: f32,
    pub scale_y: f32,
    pub pad_x: f32,
    pub pad_y: f32,
}

impl Geometry {
    /// The geometry of `mode` for a `src` image and a `dst` input size (all non-zero).
    pub fn new(mode: ResizeMode, src: (usize, usize), dst: (usize, usize)) -> Self {
        let (sw, sh) = (src.0 as f32, src.1 as f32);
        let (dw, dh) = (dst.0 as f32, dst.1 as f32);
        let (scale_x, scale_y, pad_x, pad_y) = match mode {
            ResizeMode::Stretch => (dw / sw, dh / sh, 0.0, 0.0),
            ResizeMode::Letterbox => {
                let s = (dw / sw).min(dh / sh);
                (s, s, (dw - sw * s) * 0.5, (dh - sh * s) * 0.5)
            }
        };
        Geometry {
            src_width: src.0,
            src_height: src.1,
            dst_width: dst.0,
            dst_height: dst.1,
            scale_x,
            scale_y,
            pad_x,
            pad_y,
        }
    }

    /// Maps a point in normalized input coordinates (0..1 across the model
    /// input) to source-image pixels, undoing the letterbox.
    #[inline]
    pub fn to_source(&self, nx: f32, ny: f32) -> [f32; 2] {
        [
            (nx * self.dst_width as f32 - self.pad_x) / self.scale_x,
            (ny * self.dst_height as f32 - self.pad_y) / self.scale_y,
        ]
    }
}

/// One output coordinate's bilinear tap along an axis: the value is
/// `w0 * src[i0] + w1 * src[i1] + (1 - w0 - w1) * pad`, so taps in the
/// letterbox padding have `w0 = w1 = 0` and taps that straddle the image
/// border blend with the padding value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tap {
    pub i0: u32,
    pub i1: u32,
    pub w0: f32,
    pub w1: f32,
}

impl Tap {
    const PAD: Tap = Tap {
        i0: 0,
        i1: 0,
        w0: 0.0,
        w1: 0.0,
    };
}

/// The bilinear tap of output pixel `o` along an axis whose source has
/// `src_len` pixels, for an output that places the source at
/// `o = src * scale + pad` (pixel-edge coordinates).
///
/// - [`Coordinates::HalfPixel`]: the output pixel centre `o + 0.5` samples
///   the source at `(o + 0.5 - pad) / scale` (edges); outside the image it
///   is padding, inside it the neighbours are clamped to the edge.
/// - [`Coordinates::Asymmetric`]: output pixel `o` samples the source pixel
///   coordinate `(o - pad) / scale` (OpenCV's `warpAffine` with the image
///   corners mapped to the output corners, as MediaPipe's ImageToTensor does);
///   neighbours outside the image are the padding value.
/// - [`Coordinates::OpencvWarp`]: as `Asymmetric`, with the sampling
///   position rounded to 1/32 pixel (the pass also rounds each interpolated
///   pixel to an integer).
pub fn tap(o: usize, scale: f32, pad: f32, src_len: usize, mode: Coordinates) -> Tap {
    let last = src_len as i64 - 1;
    match mode {
        Coordinates::HalfPixel => {
            let u = (o as f32 + 0.5 - pad) / scale;
            if !(0.0..src_len as f32).contains(&u) {
                return Tap::PAD;
            }
            let s = (u - 0.5).max(0.0);
            let i0 = (s.floor() as usize).min(src_len - 1);
            let i1 = (i0 + 1).min(src_len - 1);
            let w1 = s - i0 as f32;
            Tap {
                i0: i0 as u32,
                i1: i1 as u32,
                w0: 1.0 - w1,
                w1,
            }
        }
        Coordinates::Asymmetric | Coordinates::OpencvWarp => {
            let s = (o as f32 - pad) / scale;
            let (f, w1) = if mode == Coordinates::OpencvWarp {
                // OpenCV rounds the source coordinate to 1/32 of a pixel.
                let q = (s * 32.0).round();
                ((q / 32.0).floor(), q.rem_euclid(32.0) / 32.0)
            } else {
                (s.floor(), s - s.floor())
            };
            let i0 = f as i64;
            let i1 = i0 + 1;
            let inside = |i: i64| (0..=last).contains(&i);
            let (mut t, mut any) = (Tap::PAD, false);
            if inside(i0) {
                t.i0 = i0 as u32;
                t.w0 = 1.0 - w1;
                any = true;
            }
            if inside(i1) && w1 > 0.0 {
                t.i1 = i1 as u32;
                t.w1 = w1;
                any = true;
            }
            if !inside(i0) {
                t.i0 = t.i1;
            }
            if !inside(i1) || w1 == 0.0 {
                t.i1 = t.i0;
            }
            if any {
                t
            } else {
                Tap::PAD
            }
        }
    }
}

/// The precomputed taps for one source size and spec.
#[derive(Debug, Clone)]
pub struct Resampler {
    pub geometry: Geometry,
    cols: Vec<Tap>,
    rows: Vec<Tap>,
}

/// Where the pre-processed values go: the model input's element type.
#[derive(Debug)]
pub enum InputTensor<'a> {
    F32(&'a mut [f32]),
    /// Quantized int8: `q = round(v / scale) + zero_point`, saturated.
    I8 {
        data: &'a mut [i8],
        scale: f32,
        zero_point: i32,
    },
    /// Quantized uint8, as `I8`.
    U8 {
        data: &'a mut [u8],
        scale: f32,
        zero_point: i32,
    },
}

impl InputTensor<'_> {
    fn len(&self) -> usize {
        match self {
            InputTensor::F32(d) => d.len(),
            InputTensor::I8 { data, .. } => data.len(),
            InputTensor::U8 { data, .. } => data.len(),
        }
    }
}

impl Resampler {
    /// Taps for frames of `src_width`x`src_height` into `spec`'s input size.
    /// Allocates (one entry per output row and column).
    pub fn new(spec: &PreprocessSpec, src_width: usize, src_height: usize) -> Result<Self, Error> {
        if src_width == 0 || src_height == 0 {
            return Err(Error::Frame(format!(
                "frame of {src_width}x{src_height} has no pixels"
            )));
        }
        let g = Geometry::new(
            spec.resize,
            (src_width, src_height),
            (spec.width, spec.height),
        );
        Ok(Resampler {
            cols: (0..spec.width)
                .map(|x| tap(x, g.scale_x, g.pad_x, src_width, spec.coordinates))
                .collect(),
            rows: (0..spec.height)
                .map(|y| tap(y, g.scale_y, g.pad_y, src_height, spec.coordinates))
                .collect(),
            geometry: g,
        })
    }

    /// Whether these taps were built for frames of this size.
    pub fn fits(&self, width: usize, height: usize) -> bool {
        self.geometry.src_width == width && self.geometry.src_height == height
    }

    /// The fused pass: writes `spec`'s normalized (and, for quantized inputs,
    /// quantized) values for `frame` into `out`. Allocates nothing.
    ///
    /// Errors if the frame is malformed, its size is not the one these taps
    /// were built for, or `out` does not hold `width * height * 3` values.
    pub fn run(
        &self,
        spec: &PreprocessSpec,
        frame: &Frame<'_>,
        out: &mut InputTensor<'_>,
    ) -> Result<(), Error> {
        frame.check()?;
        if !self.fits(frame.width, frame.height) {
            return Err(Error::Frame(format!(
                "frame of {}x{} given to a pre-processor set up for {}x{}",
                frame.width, frame.height, self.geometry.src_width, self.geometry.src_height
            )));
        }
        let (w, h) = (spec.width, spec.height);
        if out.len() != w * h * 3 || self.cols.len() != w || self.rows.len() != h {
            return Err(Error::Frame(format!(
                "input tensor holds {} values; {}x{}x3 needed",
                out.len(),
                w,
                h
            )));
        }
        // Per model channel: which RGB channel feeds it, and its affine map.
        let src_c: [usize; 3] = match spec.color {
            ColorOrder::Rgb => [0, 1, 2],
            ColorOrder::Bgr => [2, 1, 0],
        };
        let pad = spec.pad;
        let round_pixels = spec.coordinates == Coordinates::OpencvWarp;
        for (oy, row) in self.rows.iter().enumerate() {
            for (ox, col) in self.cols.iter().enumerate() {
                // `pad` is in model channel order; sampled pixels are RGB.
                let (wy, wx) = (row.w0 + row.w1, col.w0 + col.w1);
                let mut rgb = [0.0f32; 3];
                if wy > 0.0 && wx > 0.0 {
                    let (y0, y1) = (row.i0 as usize, row.i1 as usize);
                    let (x0, x1) = (col.i0 as usize, col.i1 as usize);
                    let p00 = frame.rgb_at(x0, y0);
                    let p01 = frame.rgb_at(x1, y0);
                    let p10 = frame.rgb_at(x0, y1);
                    let p11 = frame.rgb_at(x1, y1);
                    for c in 0..3 {
                        let top = p00[c] * col.w0 + p01[c] * col.w1;
                        let bot = p10[c] * col.w0 + p11[c] * col.w1;
                        rgb[c] = top * row.w0 + bot * row.w1;
                    }
                }
                let rest = 1.0 - wy * wx;
                let mut px = [rgb[src_c[0]], rgb[src_c[1]], rgb[src_c[2]]];
                if rest > 0.0 {
                    for (v, p) in px.iter_mut().zip(pad) {
                        *v += p * rest;
                    }
                }
                if round_pixels {
                    px = px.map(f32::round);
                }
                for (c, p) in px.into_iter().enumerate() {
                    let v = p * spec.scale[c] + spec.offset[c];
                    let i = match spec.layout {
                        Layout::Nhwc => (oy * w + ox) * 3 + c,
                        Layout::Nchw => (c * h + oy) * w + ox,
                    };
                    match out {
                        InputTensor::F32(d) => d[i] = v,
                        InputTensor::I8 {
                            data,
                            scale,
                            zero_point,
                        } => data[i] = quantize(v, *scale, *zero_point, -128, 127) as i8,
                        InputTensor::U8 {
                            data,
                            scale,
                            zero_point,
                        } => data[i] = quantize(v, *scale, *zero_point, 0, 255) as u8,
                    }
                }
            }
        }
        Ok(())
    }
}

/// `round(v / scale) + zero_point`, saturated to `lo..=hi`.
#[inline]
pub fn quantize(v: f32, scale: f32, zero_point: i32, lo: i32, hi: i32) -> i32 {
    let q = (v / scale).round();
    let q = if q.is_nan() { 0.0 } else { q };
    (q.clamp(-1e9, 1e9) as i32 + zero_point).clamp(lo, hi)
}
