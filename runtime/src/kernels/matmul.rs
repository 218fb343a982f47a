//! f32 matrix products of two run-time operands (BATCH_MATMUL: attention's
//! `Q·Kᵀ` and `softmax·V`), where neither side is a constant the session
//! could pack in advance.
//!
//! [`matmul_rows_f32`] is register-blocked: a tile of `MR` rows × `NR`
//! columns of the output stays in registers while `k` runs, each step
//! reading one contiguous `NR`-wide piece of a row of `B` (row-major, no
//! packing) and broadcasting one value of each of the tile's rows of `A`.
//! Every output is still `((0 + a₀b₀) + a₁b₁) + …` in the order of `k`,
//! multiplied then added as the reference does (Rust never contracts to
//! FMA), so the result is bit-identical to
//! [`crate::kernels::reference::math::batch_matmul_f32`]; the speed comes
//! from the vector lanes LLVM makes of the tile's fixed-size arrays and from
//! reading `B` along its rows instead of down its columns. Instances for a
//! CPU's wider registers are the same function compiled with its target
//! features (see `arch`).

use crate::kernels::pack::for_each_row_chunk;

/// One operand pair's rows: `out[r][..n] = a[r][..k] · b[..k][..n]` for
/// `rows` rows (`a` holds `rows × k` values, `b` `k × n`, `out` `rows × n`).
pub type MatmulF32Fn = fn(&[f32], &[f32], &mut [f32], usize, usize, usize);

/// The portable blocked kernel: 4 × 8 tiles (two 4-lane vectors a row on
/// SSE2, which x86_64 builds assume, and on NEON; 8 accumulator registers
/// of 16), 8 × 8 on aarch64 (16 of its 32 vector registers).
pub fn blocked_matmul_f32(a: &[f32], b: &[f32], out: &mut [f32], rows: usize, k: usize, n: usize) {
    #[cfg(target_arch = "aarch64")]
    matmul_rows_f32::<8, 8>(a, b, out, rows, k, n);
    #[cfg(not(target_arch = "aarch64"))]
    matmul_rows_f32::<4, 8>(a, b, out, rows, k, n);
}

/// The name `inspect` shows for [`blocked_matmul_f32`].
#[cfg(target_arch = "aarch64")]
pub const BLOCKED_NAME: &str = "neon_batch_matmul_f32_8x8";
#[cfg(not(target_arch = "aarch64"))]
pub const BLOCKED_NAME: &str = "blocked_batch_matmul_f32_4x8";

/// `out = a · b` for `rows` rows in `MR × NR` tiles (see the module docs);
/// the last `rows % MR` rows go one at a time, and the last `n % NR`
/// columns through a zero-padded copy of `b`'s piece, so every tile runs
/// the same vector code.
#[inline(always)]
pub fn matmul_rows_f32<const MR: usize, const NR: usize>(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    rows: usize,
    k: usize,
    n: usize,
) {
    assert!(
        a.len() >= rows * k && b.len() >= k * n && out.len() >= rows * n,
        "matmul operand sizes"
    );
    let mut i = 0;
    while i + MR <= rows {
        tile_row::<MR, NR>(
            &a[i * k..(i + MR) * k],
            b,
            &mut out[i * n..(i + MR) * n],
            k,
            n,
        );
        i += MR;
    }
    while i < rows {
        tile_row::<1, NR>(
            &a[i * k..(i + 1) * k],
            b,
            &mut out[i * n..(i + 1) * n],
            k,
            n,
        );
        i += 1;
    }
}

/// `R` rows of the output (`a`: `R × k`, `out`: `R × n`), `NR` columns at a time.
#[inline(always)]
fn tile_row<const R: usize, const NR: usize>(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    k: usize,
    n: usize,
) {
    let mut j = 0;
    while j + NR <= n {
        let mut acc = [[0f32; NR]; R];
        for p in 0..k {
            let piece: &[f32; NR] = b[p * n + j..p * n + j + NR].try_into().unwrap();
            madd_rows(&mut acc, a, k, p, piece);
        }
        for (r, acc) in acc.iter().enumerate() {
            out[r * n + j..r * n + j + NR].copy_from_slice(acc);
        }
        j += NR;
    }
    if j < n {
        let w = n - j;
        let mut acc = [[0f32; NR]; R];
        for p in 0..k {
            let mut piece = [0f32; NR];
            piece[..w].copy_from_slice(&b[p * n + j..p * n + n]);
            madd_rows(&mut acc, a, k, p, &piece);
        }
        for (r, acc) in acc.iter().enumerate() {
            out[r * n + j..r * n + n].copy_from_slice(&acc[..w]);
        }
    }
}

/// `acc[r] += a[r][p] · piece` for each of the tile's rows.
#[inline(always)]
fn madd_rows<const R: usize, const NR: usize>(
    acc: &mut [[f32; NR]; R],
    a: &[f32],
    k: usize,
    p: usize,
    piece: &[f32; NR],
) {
    for (r, acc) in acc.iter_mut().enumerate() {
        let x = a[r * k + p];
        for (s, &y) in acc.iter_mut().zip(piece) {
            *s += x * y;
        }
    }
}

/// BATCH_MATMUL on the current thread pool: `batches` products
/// `[m, k] · [k, n]`, output batch `bt` reading `a`'s batch `a_index(bt)`
/// and `b`'s batch `b_index(bt)` (broadcast batches repeat an index). The
/// threads split the `batches × m` output rows; `f` computes each run of
/// rows inside one batch.
#[allow(clippy::too_many_arguments)]
pub fn batch_matmul_f32(
    f: MatmulF32Fn,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    (m, k, n): (usize, usize, usize),
    batches: usize,
    a_index: &(dyn Fn(usize) -> usize + Sync),
    b_index: &(dyn Fn(usize) -> usize + Sync),
) {
    if m == 0 || n == 0 {
        return;
    }
    // Row chunks of about 64 KiB of output, so small products stay on one
    // thread.
    let align = (16 * 1024 / n).clamp(1, m * batches.max(1));
    for_each_row_chunk(out, batches * m, n, align, &|rows, chunk| {
        let mut r = rows.start;
        while r < rows.end {
            let (bt, i) = (r / m, r % m);
            let len = (m - i).min(rows.end - r);
            let (ab, bb) = (a_index(bt) * m * k, b_index(bt) * k * n);
            let o = (r - rows.start) * n;
            f(
                &a[ab + i * k..ab + (i + len) * k],
                &b[bb..bb + k * n],
                &mut chunk[o..o + len * n],
                len,
                k,
                n,
            );
            r += len;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::reference::math;
    use alloc::vec::Vec;

    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// Every instance against the reference, bit for bit, over shapes with
    /// row and column tails, `k` of 0 and 1, and broadcast batches.
    #[test]
    fn blocked_equals_reference_bit_for_bit() {
        let mut kernels: Vec<(&str, MatmulF32Fn)> = alloc::vec![
            ("blocked", blocked_matmul_f32),
            ("1x1", |a, b, o, r, k, n| matmul_rows_f32::<1, 1>(
                a, b, o, r, k, n
            )),
            ("3x5", |a, b, o, r, k, n| matmul_rows_f32::<3, 5>(
                a, b, o, r, k, n
            )),
        ];
        kernels.extend(
            crate::kernels::table::KernelTable::detect()
                .matmul_f32
                .map(|e| (e.name, e.f)),
        );
        for (name, f) in kernels {
            for &(m, k, n) in &[
                (1, 1, 1),
                (4, 8, 8),
                (49, 32, 49),
                (49, 49, 32),
                (7, 0, 5),
                (9, 1, 33),
                (13, 17, 70),
            ] {
                for &(ba, bb) in &[(1, 1), (3, 1), (1, 2), (2, 2)] {
                    let batches = ba.max(bb);
                    let a = values(ba * m * k, (m * 31 + k) as u32);
                    let b = values(bb * k * n, (n * 17 + k) as u32);
                    let mut want = alloc::vec![0f32; batches * m * n];
                    let mut got = alloc::vec![f32::NAN; batches * m * n];
                    let ai = |bt: usize| if ba == 1 { 0 } else { bt };
                    let bi = |bt: usize| if bb == 1 { 0 } else { bt };
                    math::batch_matmul_f32(&a, &b, &mut want, m, k, n, batches, ai, bi);
                    batch_matmul_f32(f, &a, &b, &mut got, (m, k, n), batches, &ai, &bi);
                    let same = want
                        .iter()
                        .zip(&got)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{name}: m {m} k {k} n {n} batches {ba}/{bb}");
                }
            }
        }
    }
}
