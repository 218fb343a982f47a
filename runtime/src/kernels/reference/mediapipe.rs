//! MediaPipe's custom ops of its attention face mesh
//! (`face_landmark_with_attention.tflite`), version 2, as MediaPipe's CPU
//! kernels compute them (`mediapipe/util/tflite/operations`): the mesh's
//! landmarks give a crop matrix per region (lips, each eye), the crop is
//! sampled from a feature map, and the region's refined landmarks are
//! mapped back through the matrix.
//!
//! Every matrix is a row-major 4x4 mapping destination to source: a crop
//! pixel `(x, y, 0, 1)` to a feature-map pixel, a crop landmark to an
//! image one. Only its first two rows are used; `z` is multiplied by 0.
//! The sums run in MediaPipe's order, in f32 except where it uses double.

/// `f32` cosine, sine and two-argument arctangent, through `f64` and rounded
/// once more: nearly always the correctly rounded value, as glibc's `cosf`,
/// `sinf` and `atan2f` give (other C libraries may differ by an ulp).
fn cos(x: f32) -> f32 {
    libm::cos(x as f64) as f32
}

fn sin(x: f32) -> f32 {
    libm::sin(x as f64) as f32
}

fn atan2(y: f32, x: f32) -> f32 {
    libm::atan2(y as f64, x as f64) as f32
}

type Mat4 = [[f32; 4]; 4];

const IDENTITY: Mat4 = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

/// `a · b`, each entry summed from 0 over `k` in order.
fn mul(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut t = [[0f32; 4]; 4];
    for (i, row) in t.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            for k in 0..4 {
                *v += a[i][k] * b[k][j];
            }
        }
    }
    t
}

fn shift(x: f32, y: f32) -> Mat4 {
    let mut m = IDENTITY;
    (m[0][3], m[1][3]) = (x, y);
    m
}

/// `(x, y, 1)` rotated by `r` as MediaPipe's 3x3 product computes it.
fn rotate(r: f32, x: f32, y: f32) -> (f32, f32) {
    let (c, s) = (cos(r), sin(r));
    let row = |a: f32, b: f32| 0.0 + a * x + b * y + 0.0 * 1.0;
    (row(c, -s), row(s, c))
}

/// The parameters of LANDMARKS_TO_TRANSFORM_MATRIX (MediaPipe's
/// `Landmarks2TransformMatrix`, version 2).
#[derive(Debug, Clone, PartialEq)]
pub struct LandmarksToTransform {
    /// Landmarks whose bounding box (in the rotated frame) is the crop.
    pub subset: alloc::vec::Vec<usize>,
    /// The landmarks whose direction sets the rotation.
    pub left: usize,
    pub right: usize,
    /// The angle that direction is rotated to.
    pub target_rotation: f32,
    /// The crop's size in pixels, and how much larger than the box it is.
    pub output_hw: (usize, usize),
    pub scale: (f32, f32),
}

impl LandmarksToTransform {
    /// The matrix from crop pixels to landmark coordinates, for `landmarks`
    /// (`x, y, z` each; `z` unused). Indices must be within the landmarks
    /// (checked by the op layer).
    pub fn matrix(&self, landmarks: &[f32]) -> [f32; 16] {
        let at = |i: usize| (landmarks[3 * i], landmarks[3 * i + 1]);
        let ((lx, ly), (rx, ry)) = (at(self.left), at(self.right));
        let rot = self.target_rotation - atan2(ry - ly, rx - lx);
        // The subset's bounding box, axis-aligned in the rotated frame.
        let mut points = self.subset.iter().map(|&i| {
            let (x, y) = at(i);
            rotate(rot, x, y)
        });
        let first = points.next().unwrap_or((0.0, 0.0));
        let (lo, hi) = points.fold((first, first), |(lo, hi), (x, y)| {
            ((lo.0.min(x), lo.1.min(y)), (hi.0.max(x), hi.1.max(y)))
        });
        let (w, h) = (hi.0 - lo.0, hi.1 - lo.1);
        let (cx, cy) = rotate(-rot, (lo.0 + hi.0) / 2.0, (lo.1 + hi.1) / 2.0);
        let (oh, ow) = self.output_hw;
        let sx = self.scale.0 * w / ow as f32;
        let sy = self.scale.1 * h / oh as f32;
        let theta = -rot;
        let mut r = IDENTITY;
        (r[0][0], r[0][1]) = (cos(theta), -sin(theta));
        (r[1][0], r[1][1]) = (sin(theta), cos(theta));
        let mut s = IDENTITY;
        (s[0][0], s[1][1]) = (sx, sy);
        let half = shift(-((ow as f64 / 2.0) as f32), -((oh as f64 / 2.0) as f32));
        let t = [shift(cx, cy), r, s, half]
            .iter()
            .fold(IDENTITY, |t, m| mul(&t, m));
        let mut out = [0f32; 16];
        for (o, v) in out.chunks_exact_mut(4).zip(t.iter()) {
            o.copy_from_slice(v);
        }
        out
    }
}

/// TRANSFORM_TENSOR_BILINEAR (MediaPipe's `TransformTensorBilinear`,
/// version 2): `output` (`oh × ow × c`) sampled bilinearly from `input`
/// (`ih × iw × c`, NHWC, one image) at `matrix · (x + ½, y + ½) − ½` for
/// output pixel `(x, y)`; pixels mapped outside the input are 0.
pub fn transform_tensor_bilinear_f32(
    input: &[f32],
    (ih, iw, c): (usize, usize, usize),
    matrix: &[f32],
    output: &mut [f32],
    (oh, ow): (usize, usize),
) {
    debug_assert!(input.len() >= ih * iw * c && output.len() >= oh * ow * c);
    let (mut xr, mut yr) = ([0f32; 4], [0f32; 4]);
    xr.copy_from_slice(&matrix[0..4]);
    yr.copy_from_slice(&matrix[4..8]);
    // Pixel centres: MediaPipe adds this correction in double.
    for r in [&mut xr, &mut yr] {
        r[3] = (r[3] as f64 + (r[0] as f64 * 0.5 + r[1] as f64 * 0.5 - 0.5)) as f32;
    }
    let tap = |y: i64, x: i64, ch: usize| -> f64 {
        if (0..ih as i64).contains(&y) && (0..iw as i64).contains(&x) {
            input[(y as usize * iw + x as usize) * c + ch] as f64
        } else {
            0.0
        }
    };
    for oy in 0..oh {
        for ox in 0..ow {
            let px = &mut output[(oy * ow + ox) * c..][..c];
            let (fx, fy) = (ox as f32, oy as f32);
            let tx = xr[0] * fx + xr[1] * fy + xr[2] * 0.0 + xr[3];
            let ty = yr[0] * fx + yr[1] * fy + yr[2] * 0.0 + yr[3];
            if !(0.0..=(iw - 1) as f32).contains(&tx) || !(0.0..=(ih - 1) as f32).contains(&ty) {
                px.fill(0.0);
                continue;
            }
            let (x0, y0) = (libm::floorf(tx), libm::floorf(ty));
            let (ax, ay) = ((tx - x0) as f64, (ty - y0) as f64);
            let (x0, y0) = (x0 as i64, y0 as i64);
            for (ch, o) in px.iter_mut().enumerate() {
                let upper = ((1.0 - ax) * tap(y0, x0, ch) + ax * tap(y0, x0 + 1, ch)) as f32;
                let lower =
                    ((1.0 - ax) * tap(y0 + 1, x0, ch) + ax * tap(y0 + 1, x0 + 1, ch)) as f32;
                *o = (ay * lower as f64 + (1.0 - ay) * upper as f64) as f32;
            }
        }
    }
}

/// TRANSFORM_LANDMARKS (MediaPipe's `TransformLandmarks`, version 2): each
/// of the landmarks (`dims` = 2 or 3 values each) has its `x, y` mapped
/// through `matrix`; `z` is copied.
pub fn transform_landmarks_f32(landmarks: &[f32], dims: usize, matrix: &[f32], out: &mut [f32]) {
    let m = matrix;
    for (o, l) in out.chunks_exact_mut(dims).zip(landmarks.chunks_exact(dims)) {
        let (x, y) = (l[0], l[1]);
        o[0] = m[0] * x + m[1] * y + m[2] * 0.0 + m[3];
        o[1] = m[4] * x + m[5] * y + m[6] * 0.0 + m[7];
        o[2..].copy_from_slice(&l[2..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-4 * (1.0 + b.abs())
    }

    /// Landmarks along a line at 90°: the crop is rotated by -90° back to
    /// the horizontal, centred on the subset's box, scaled to the box.
    #[test]
    fn transform_matrix_of_a_rotated_box() {
        // Landmark 0 at (10, 10), 1 at (10, 30) (pointing down the image),
        // 2 at (6, 20) and 3 at (14, 20) (across).
        let lm = [
            10.0, 10.0, 0.0, 10.0, 30.0, 0.0, 6.0, 20.0, 0.0, 14.0, 20.0, 0.0,
        ];
        let p = LandmarksToTransform {
            subset: alloc::vec![0, 1, 2, 3],
            left: 0,
            right: 1,
            target_rotation: 0.0,
            output_hw: (8, 16),
            scale: (1.0, 1.0),
        };
        let m = p.matrix(&lm);
        // The crop's centre (8, 4) is the box's centre (10, 20).
        let at = |x: f32, y: f32| (m[0] * x + m[1] * y + m[3], m[4] * x + m[5] * y + m[7]);
        let (cx, cy) = at(8.0, 4.0);
        assert!(close(cx, 10.0) && close(cy, 20.0), "{cx} {cy}");
        // Along the crop's x axis (16 px) the box's 20-px length, downwards.
        let (ex, ey) = at(16.0, 4.0);
        assert!(close(ex, 10.0) && close(ey, 30.0), "{ex} {ey}");
        // Along its y axis (8 px) the box's 8-px width, towards -x.
        let (fx, fy) = at(8.0, 8.0);
        assert!(close(fx, 6.0) && close(fy, 20.0), "{fx} {fy}");
        assert_eq!(m[8..], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn bilinear_crop_samples_pixel_centres_and_zeroes_outside() {
        // A 4x4 ramp, value 10·y + x, one channel.
        let input: alloc::vec::Vec<f32> = (0..16).map(|i| (10 * (i / 4) + i % 4) as f32).collect();
        // Identity: each output pixel is the input pixel.
        let mut id = [0f32; 16];
        (id[0], id[5], id[10], id[15]) = (1.0, 1.0, 1.0, 1.0);
        let mut out = [0f32; 16];
        transform_tensor_bilinear_f32(&input, (4, 4, 1), &id, &mut out, (4, 4));
        assert_eq!(out[..], input[..]);
        // Half scale, shifted right by 1: output pixel (x, y) samples
        // (0.5·(x + ½) − ½ + 1, 0.5·(y + ½) − ½) = (0.5x + 0.75, 0.5y − 0.25).
        let mut half = id;
        (half[0], half[5], half[3], half[7]) = (0.5, 0.5, 1.0, 0.0);
        let mut out = [0f32; 4];
        transform_tensor_bilinear_f32(&input, (4, 4, 1), &half, &mut out, (2, 2));
        // Row 0 (y = -0.25) is outside; row 1 samples y = 0.25.
        assert_eq!(out[..2], [0.0, 0.0]);
        assert!(
            close(out[2], 2.5 + 0.75) && close(out[3], 2.5 + 1.25),
            "{out:?}"
        );
    }

    #[test]
    fn landmarks_map_through_the_matrix_keeping_z() {
        let m = [
            2.0, 0.0, 5.0, 1.0, 0.0, 3.0, 5.0, -1.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0,
        ];
        let mut out = [0f32; 6];
        transform_landmarks_f32(&[1.0, 2.0, 7.0, -1.0, 0.5, 8.0], 3, &m, &mut out);
        assert_eq!(out, [3.0, 5.0, 7.0, -1.0, 0.5, 8.0]);
    }
}
