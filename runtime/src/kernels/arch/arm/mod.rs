//! armv7 (32-bit Raspberry Pi OS): the NEON int8 GEMM (VMULL.S8 + VPADAL.S16,
//! 4 MACs per instruction) behind 1x1 convolutions and k×k convolutions
//! through im2col, the int8 depthwise convolution (VMLAL.S16, 8 channels
//! per step), the int8 ADD/SUB, and the f32 GEMM (2 rows × 8 channels,
//! VMLA.F32 by scalar) and depthwise convolution (8 channels per step).
//!
//! NEON is optional in the armv7 target's baseline (`armv7-unknown-linux-
//! gnueabihf` builds without it), so it is detected at run time: with `std`
//! from the kernel's auxiliary vector (`AT_HWCAP`'s `HWCAP_NEON` bit;
//! `std::arch::is_arm_feature_detected!` is not stable), without `std` from
//! the build's target features (a `cfg` stable Rust doesn't set for arm
//! yet, so `no_std` armv7 builds run the reference).

pub mod neon;

use crate::kernels::pack::{QGemmIsa, SGemmIsa};
use crate::kernels::table::{Entry, KernelTable};

/// What the running CPU supports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    pub neon: bool,
}

impl Features {
    /// Detects the features.
    pub fn detect() -> Self {
        Features { neon: has_neon() }
    }
}

#[cfg(feature = "std")]
fn has_neon() -> bool {
    const AT_HWCAP: u32 = 16;
    const HWCAP_NEON: u32 = 1 << 12;
    // 32-bit (type, value) pairs.
    std::fs::read("/proc/self/auxv").is_ok_and(|auxv| {
        auxv.chunks_exact(8).any(|e| {
            let word = |i: usize| u32::from_le_bytes([e[i], e[i + 1], e[i + 2], e[i + 3]]);
            word(0) == AT_HWCAP && word(4) & HWCAP_NEON != 0
        })
    })
}

#[cfg(not(feature = "std"))]
fn has_neon() -> bool {
    cfg!(target_feature = "neon")
}

/// The NEON int8 GEMM: one row × 16 channels per step.
pub const NEON_QGEMM: QGemmIsa = QGemmIsa {
    name: "armv7_neon_qgemm_i8_1x16",
    im2col_name: "armv7_neon_qconv_im2col_i8_1x16",
    nr: 16,
    kr: 4,
    x_bias: 0,
    run: neon::neon_qgemm_i8,
};

/// The NEON f32 GEMM: two rows × 8 channels per step.
pub const NEON_SGEMM: SGemmIsa = SGemmIsa {
    name: "armv7_neon_sgemm_f32_2x8",
    im2col_name: "armv7_neon_sconv_im2col_f32_2x8",
    deconv_name: "armv7_neon_deconv_f32_2x8",
    nr: neon::SGEMM_NR,
    run: neon::neon_sgemm_f32,
    run_window: None,
};

/// Plugs what `Features::detect()` allows.
pub fn plug(table: &mut KernelTable) {
    plug_with(table, Features::detect());
}

/// Plugs the kernels `f` allows.
pub fn plug_with(table: &mut KernelTable, f: Features) {
    if f.neon {
        table.qgemm = Some(NEON_QGEMM);
        table.qdw = Some(Entry {
            f: neon::neon_qdw_i8,
            name: "armv7_neon_dwconv_i8_8c",
        });
        table.qadd = Some(Entry {
            f: neon::neon_qadd_i8,
            name: "armv7_neon_add_i8_8",
        });
        table.sgemm = Some(NEON_SGEMM);
        table.sdw = Some(Entry {
            f: neon::neon_sdw_f32,
            name: "armv7_neon_dwconv_f32_8c",
        });
    }
}

/// The NEON table when this CPU has NEON.
pub fn variants() -> alloc::vec::Vec<(&'static str, KernelTable)> {
    let mut v = alloc::vec::Vec::new();
    let f = Features::detect();
    if f.neon {
        let mut t = KernelTable::reference();
        plug_with(&mut t, f);
        v.push(("armv7-neon", t));
    }
    v
}
