//! Range observers and calibration methods.
//!
//! Calibration runs the float model twice over the samples. The first pass
//! records each tensor's min and max ([`Observer::record_minmax`]); the
//! second fills a histogram over that span ([`Observer::record_hist`]).
//! [`Method::select`] then picks the range that int8 will cover:
//!
//! - `minmax`: the observed min and max (never clips).
//! - `percentile=P`: the `(100-P)`th and `P`th percentiles (clips the tails).
//! - `entropy`: TensorRT's KL-divergence search: the clipping threshold whose
//!   quantized histogram loses the least information.
//! - `avgminmax`: the mean over calibration samples of each sample's min and
//!   max (TensorFlow's moving-average min/max without the decay): rare
//!   extremes of single samples are clipped, typical ones kept.
//!
//! - `mse`: the range with the least expected squared error (clipping plus
//!   rounding) over the histogram.
//! - `auto` (the default, see [`Choice`]): each of these is tried and the one
//!   whose int8 model is closest to float end to end is kept.
//!
//! Every range is widened to include 0, so zero is exactly representable.

use anyhow::{bail, Result};

/// Histogram bins per observed span (per side for signed tensors).
pub const BINS: usize = 2048;

/// How a tensor's int8 range is chosen from its observations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    MinMax,
    /// Keep the central `P` percent (as a percentile, e.g. 99.99).
    Percentile(f64),
    Entropy,
    /// The range `[a·min, a·max]` (0 < a ≤ 1) with the least expected
    /// squared error (clipping plus rounding) over the histogram.
    Mse,
    /// The mean of the per-sample minima and maxima.
    AvgMinMax,
}

/// What `--calib-method` asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    /// Every method of [`Method::CANDIDATES`] is tried; the quantizer keeps
    /// the one whose int8 model's outputs are closest to float. No one method
    /// wins everywhere: on MobileNetV2 `avgminmax` does (20.6 dB end to end,
    /// `mse` 16.9), on BlazeFace it is among the worst.
    Auto,
    Fixed(Method),
}

impl Choice {
    /// Parses `auto` (also the empty string: the default), `percentile`,
    /// `percentile=P` (50 < P ≤ 100), `minmax`, `avgminmax`, `entropy` or
    /// `mse`.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        Ok(Choice::Fixed(match s {
            "" | "auto" => return Ok(Choice::Auto),
            "minmax" | "min-max" => Method::MinMax,
            "entropy" | "kl" => Method::Entropy,
            "mse" => Method::Mse,
            "avgminmax" | "avg-minmax" => Method::AvgMinMax,
            "percentile" => Method::Percentile(99.99),
            _ => match s.strip_prefix("percentile=") {
                Some(p) => match p.parse::<f64>() {
                    Ok(p) if p > 50.0 && p <= 100.0 => Method::Percentile(p),
                    _ => bail!("--calib-method {s}: the percentile must be in (50, 100]"),
                },
                None => bail!(
                    "--calib-method {s}: expected auto, minmax, avgminmax, percentile[=P], entropy or mse"
                ),
            },
        }))
    }

    /// Whether calibration needs the histogram pass.
    pub fn needs_histogram(&self) -> bool {
        match self {
            Choice::Auto => true,
            Choice::Fixed(m) => m.needs_histogram(),
        }
    }
}

impl Method {
    /// The methods `auto` tries, in the order it reports them.
    pub const CANDIDATES: [Method; 5] = [
        Method::Percentile(99.99),
        Method::AvgMinMax,
        Method::Mse,
        Method::Entropy,
        Method::MinMax,
    ];

    /// The method's name as the report shows it.
    pub fn name(&self) -> String {
        match self {
            Method::MinMax => "minmax".into(),
            Method::Percentile(p) => format!("percentile={p}"),
            Method::Entropy => "entropy".into(),
            Method::Mse => "mse".into(),
            Method::AvgMinMax => "avgminmax".into(),
        }
    }

    /// Whether this method needs the histogram pass.
    pub fn needs_histogram(&self) -> bool {
        !matches!(self, Method::MinMax | Method::AvgMinMax)
    }

    /// The range to quantize `obs` to (always containing 0).
    pub fn select(&self, obs: &Observer) -> (f32, f32) {
        let (lo, hi) = match self {
            Method::MinMax => (obs.min, obs.max),
            Method::Percentile(p) => obs.percentile_range(*p),
            Method::Entropy => obs.entropy_range(),
            Method::Mse => obs.mse_range(),
            Method::AvgMinMax => obs.avg_minmax_range(),
        };
        (lo.min(0.0), hi.max(0.0))
    }
}

/// What calibration learned about one tensor.
#[derive(Debug, Clone)]
pub struct Observer {
    pub min: f32,
    pub max: f32,
    pub count: u64,
    /// Sums of each recorded sample's min and max, and how many samples.
    sum_min: f64,
    sum_max: f64,
    samples: u64,
    /// Histogram over `[lo, hi)`: `[0, max]` for a non-negative tensor,
    /// `[-a, a]` (a = max |x|) otherwise. Empty until the second pass.
    hist: Vec<u64>,
    lo: f32,
    hi: f32,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            count: 0,
            sum_min: 0.0,
            sum_max: 0.0,
            samples: 0,
            hist: Vec::new(),
            lo: 0.0,
            hi: 0.0,
        }
    }
}

impl Observer {
    /// Whether anything was recorded.
    pub fn seen(&self) -> bool {
        self.count > 0
    }

    /// First pass: widens min/max over `values` (one sample's tensor).
    pub fn record_minmax(&mut self, values: &[f32]) {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in values {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        self.min = self.min.min(lo);
        self.max = self.max.max(hi);
        if !values.is_empty() {
            self.sum_min += lo as f64;
            self.sum_max += hi as f64;
            self.samples += 1;
        }
        self.count += values.len() as u64;
    }

    /// The mean of the recorded samples' minima and maxima.
    pub fn avg_minmax_range(&self) -> (f32, f32) {
        if self.samples == 0 {
            return (self.min, self.max);
        }
        let n = self.samples as f64;
        ((self.sum_min / n) as f32, (self.sum_max / n) as f32)
    }

    fn signed(&self) -> bool {
        self.min < 0.0
    }

    /// Second pass: adds `values` to the histogram over the first pass's span.
    pub fn record_hist(&mut self, values: &[f32]) {
        if self.hist.is_empty() {
            let a = self.max.abs().max(self.min.abs());
            let (lo, hi, n) = if self.signed() {
                (-a, a, 2 * BINS)
            } else {
                (0.0, self.max.max(0.0), BINS)
            };
            self.hist = vec![0; n];
            self.lo = lo;
            self.hi = hi;
        }
        let n = self.hist.len();
        let width = self.hi - self.lo;
        if width <= 0.0 {
            self.hist[0] += values.len() as u64;
            return;
        }
        let k = n as f32 / width;
        for &v in values {
            let b = ((v - self.lo) * k) as isize;
            self.hist[b.clamp(0, n as isize - 1) as usize] += 1;
        }
    }

    fn bin_width(&self) -> f32 {
        (self.hi - self.lo) / self.hist.len().max(1) as f32
    }

    /// The `(100-p)`th and `p`th percentiles from the histogram (min/max
    /// when there is none). A non-negative tensor keeps its lower end at 0.
    pub fn percentile_range(&self, p: f64) -> (f32, f32) {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return (self.min, self.max);
        }
        let tail = ((1.0 - p / 100.0) * total as f64).max(0.0);
        let w = self.bin_width();
        // Upper: the first bin (from the top) where the tail above exceeds `tail`.
        let mut above = 0f64;
        let mut hi = self.max;
        for b in (0..self.hist.len()).rev() {
            above += self.hist[b] as f64;
            if above > tail {
                hi = (self.lo + (b + 1) as f32 * w).min(self.max);
                break;
            }
        }
        let mut below = 0f64;
        let mut lo = self.min;
        if self.signed() {
            for (b, &c) in self.hist.iter().enumerate() {
                below += c as f64;
                if below > tail {
                    lo = (self.lo + b as f32 * w).max(self.min);
                    break;
                }
            }
        }
        (lo, hi)
    }

    /// The MSE-optimal shrink of `[min, max]`: for each candidate
    /// `a ∈ (0, 1]` the expected error of quantizing the histogram to 255
    /// steps over `[a·min, a·max]` (values outside are clipped).
    pub fn mse_range(&self) -> (f32, f32) {
        let total: u64 = self.hist.iter().sum();
        if total == 0 {
            return (self.min, self.max);
        }
        let (lo0, hi0) = (self.min.min(0.0) as f64, self.max.max(0.0) as f64);
        let w = self.bin_width() as f64;
        let centers: Vec<(f64, f64)> = self
            .hist
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(b, &c)| (self.lo as f64 + (b as f64 + 0.5) * w, c as f64))
            .collect();
        let mut best = (f64::INFINITY, 1.0f64);
        for k in 1..=200 {
            let a = k as f64 / 200.0;
            let (lo, hi) = (a * lo0, a * hi0);
            let step = (hi - lo) / 255.0;
            if step <= 0.0 {
                continue;
            }
            let noise = step * step / 12.0;
            let err: f64 = centers
                .iter()
                .map(|&(v, c)| {
                    let d = if v < lo {
                        (lo - v).powi(2)
                    } else if v > hi {
                        (v - hi).powi(2)
                    } else {
                        noise
                    };
                    c * d
                })
                .sum();
            if err < best.0 {
                best = (err, a);
            }
        }
        (
            (best.1 * self.min as f64) as f32,
            (best.1 * self.max as f64) as f32,
        )
    }

    /// The KL-divergence (entropy) range. A non-negative tensor searches an
    /// upper threshold with 255 quantization levels over `[0, t]`; a signed
    /// one searches a symmetric threshold over `|x|` with 127 levels per side.
    pub fn entropy_range(&self) -> (f32, f32) {
        if self.hist.iter().all(|&c| c == 0) {
            return (self.min, self.max);
        }
        let w = self.bin_width();
        if self.signed() {
            // Fold to |x|.
            let half = self.hist.len() / 2;
            let mut folded: Vec<u64> = (0..half)
                .map(|i| self.hist[half + i] + self.hist[half - 1 - i])
                .collect();
            // Exact zeros (after ReLU, padding) are represented exactly
            // whatever the threshold; left in, their spike pulls the search
            // towards thresholds that clip the real distribution.
            folded[0] = 0;
            let bins = kl_threshold_bins(&folded, 128);
            let t = bins as f32 * w;
            (self.min.max(-t), self.max.min(t))
        } else {
            let mut hist = self.hist.clone();
            hist[0] = 0;
            let bins = kl_threshold_bins(&hist, 256);
            (self.min.max(0.0), (bins as f32 * w).min(self.max))
        }
    }
}

/// TensorRT's entropy calibration: the number of leading bins `i` of `hist`
/// that minimizes KL(P‖Q), where P is `hist[..i]` with the clipped mass
/// added to its last bin and Q is P merged into `levels` buckets and spread
/// back over each bucket's non-empty bins.
pub fn kl_threshold_bins(hist: &[u64], levels: usize) -> usize {
    let n = hist.len();
    if n <= levels {
        return n;
    }
    let total_after: Vec<u64> = {
        // suffix sums: mass at or beyond bin i
        let mut s = vec![0u64; n + 1];
        for i in (0..n).rev() {
            s[i] = s[i + 1] + hist[i];
        }
        s
    };
    let step = (n / 512).max(1);
    let mut best = (f64::INFINITY, n);
    let mut p = vec![0f64; n];
    let mut q = vec![0f64; n];
    let mut i = levels;
    while i <= n {
        for b in 0..i {
            p[b] = hist[b] as f64;
        }
        p[i - 1] += total_after[i] as f64;
        // Q: merge hist[..i] into `levels` buckets, spread over non-empty bins.
        for l in 0..levels {
            let start = l * i / levels;
            let end = ((l + 1) * i / levels).max(start + 1).min(i);
            let mass: f64 = hist[start..end].iter().map(|&c| c as f64).sum();
            let nonzero = hist[start..end].iter().filter(|&&c| c > 0).count();
            for b in start..end {
                q[b] = if hist[b] > 0 && nonzero > 0 {
                    mass / nonzero as f64
                } else {
                    0.0
                };
            }
        }
        let ps: f64 = p[..i].iter().sum();
        let qs: f64 = q[..i].iter().sum();
        // Q with no mass cannot represent P at all.
        let mut kl = if qs > 0.0 { 0.0 } else { f64::INFINITY };
        if ps > 0.0 && qs > 0.0 {
            for b in 0..i {
                if p[b] > 0.0 {
                    let pb = p[b] / ps;
                    // A bin P has mass in but Q does not (the clipped mass
                    // landing in an empty last bin) is smoothed, as TensorRT does.
                    let qb = (q[b] / qs).max(1e-12);
                    kl += pb * (pb / qb).ln();
                }
            }
        }
        if kl < best.0 {
            best = (kl, i);
        }
        i += step;
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic standard-normal sample (Box–Muller over an LCG).
    fn gaussian(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u, v) = (next(), next());
                ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
            })
            .collect()
    }

    fn observe(values: &[f32]) -> Observer {
        let mut o = Observer::default();
        o.record_minmax(values);
        o.record_hist(values);
        o
    }

    fn with_outliers() -> Vec<f32> {
        let mut v = gaussian(200_000, 7);
        v.extend([60.0, -55.0, 48.0, 70.0]);
        v
    }

    #[test]
    fn minmax_keeps_outliers() {
        let o = observe(&with_outliers());
        let (lo, hi) = Method::MinMax.select(&o);
        assert_eq!((lo, hi), (-55.0, 70.0));
    }

    #[test]
    fn percentile_clips_outliers_of_a_gaussian() {
        let o = observe(&with_outliers());
        let (lo, hi) = Method::Percentile(99.99).select(&o);
        // The 99.99th percentile of N(0,1) is 3.72.
        assert!((3.0..4.6).contains(&hi), "hi = {hi}");
        assert!((-4.6..-3.0).contains(&lo), "lo = {lo}");
    }

    #[test]
    fn entropy_clips_outliers_of_a_gaussian() {
        let o = observe(&with_outliers());
        let (lo, hi) = Method::Entropy.select(&o);
        assert!(hi > 2.0 && hi < 12.0, "hi = {hi}");
        assert!(lo < -2.0 && lo > -12.0, "lo = {lo}");
    }

    #[test]
    fn entropy_of_a_uniform_keeps_nearly_everything() {
        // Uniform in [0, 6): no tail to clip, so the threshold stays near 6.
        let v: Vec<f32> = (0..100_000).map(|i| (i % 6000) as f32 / 1000.0).collect();
        let o = observe(&v);
        let (lo, hi) = Method::Entropy.select(&o);
        assert_eq!(lo, 0.0);
        assert!(hi > 5.5 && hi <= 6.0, "hi = {hi}");
    }

    #[test]
    fn relu_like_tensor_keeps_zero_lower_bound() {
        let v: Vec<f32> = gaussian(50_000, 3)
            .into_iter()
            .map(|x| x.max(0.0))
            .collect();
        let o = observe(&v);
        for m in [Method::MinMax, Method::Percentile(99.9), Method::Entropy] {
            let (lo, hi) = m.select(&o);
            assert_eq!(lo, 0.0, "{m:?}");
            assert!(hi > 2.0, "{m:?}: hi = {hi}");
        }
    }

    #[test]
    fn ranges_always_contain_zero() {
        let v: Vec<f32> = (0..1000).map(|i| 5.0 + i as f32 / 1000.0).collect();
        let o = observe(&v);
        for m in [Method::MinMax, Method::Percentile(99.0), Method::Entropy] {
            let (lo, hi) = m.select(&o);
            assert!(lo <= 0.0 && hi >= 5.9, "{m:?}: {lo}..{hi}");
        }
    }

    #[test]
    fn mse_keeps_outliers_that_carry_energy_and_clips_rare_small_ones() {
        // Heavy outliers cost more clipped than rounded coarsely: kept.
        let o = observe(&with_outliers());
        let (lo, hi) = Method::Mse.select(&o);
        assert!(hi > 30.0 && lo < -20.0, "{lo}..{hi}");
        // A plain Gaussian: the thin tails are clipped, the bulk kept.
        let v = gaussian(200_000, 5);
        let o = observe(&v);
        let (_, hi) = Method::Mse.select(&o);
        assert!(hi < o.max && hi > 2.5, "hi = {hi}, max = {}", o.max);
    }

    #[test]
    fn avgminmax_clips_the_extremes_of_single_samples() {
        // Ten samples in [-1, 1], one of them with a spike at 50.
        let mut o = Observer::default();
        for k in 0..10 {
            let mut v: Vec<f32> = (0..100).map(|i| i as f32 / 50.0 - 1.0).collect();
            if k == 3 {
                v[7] = 50.0;
            }
            o.record_minmax(&v);
        }
        let (lo, hi) = Method::AvgMinMax.select(&o);
        assert!((lo + 1.0).abs() < 1e-6, "{lo}");
        // (9 * 0.98 + 50) / 10: the spike moves the mean, it doesn't set the range.
        assert!((hi - 5.882).abs() < 1e-3, "{hi}");
        assert_eq!(Method::MinMax.select(&o), (-1.0, 50.0));
        assert!(!Method::AvgMinMax.needs_histogram());
        assert_eq!(
            Choice::parse("avgminmax").unwrap(),
            Choice::Fixed(Method::AvgMinMax)
        );
    }

    #[test]
    fn parse_methods() {
        let fixed = |s: &str| match Choice::parse(s).unwrap() {
            Choice::Fixed(m) => m,
            Choice::Auto => panic!("{s} parsed as auto"),
        };
        assert_eq!(fixed("minmax"), Method::MinMax);
        assert_eq!(fixed("percentile"), Method::Percentile(99.99));
        assert_eq!(fixed("percentile=99.9"), Method::Percentile(99.9));
        assert_eq!(fixed("entropy"), Method::Entropy);
        assert_eq!(fixed("mse"), Method::Mse);
        assert_eq!(fixed("avgminmax"), Method::AvgMinMax);
        assert_eq!(Choice::parse("").unwrap(), Choice::Auto);
        assert_eq!(Choice::parse("auto").unwrap(), Choice::Auto);
        assert!(Choice::parse("auto").unwrap().needs_histogram());
        assert!(Choice::parse("percentile=20").is_err());
        assert!(Choice::parse("l2").is_err());
    }
}
