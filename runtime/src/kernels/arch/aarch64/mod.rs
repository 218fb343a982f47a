//! aarch64: NEON int8 GEMM (SMULL/SADALP, the Cortex-A72 / Raspberry Pi 4
//! path), the dotprod variant (SDOT, Cortex-A76 / Raspberry Pi 5, Orin) and
//! the i8mm one (SMMLA: Cortex-A78AE in Jetson Orin, Neoverse V1/N2,
//! Cortex-A510/A710 and later).
//!
//! NEON is part of the aarch64 baseline; dotprod and i8mm are detected at
//! run time (`std`) or taken from the build's target features (`no_std`).

pub mod neon;

use crate::kernels::pack::{QDotIsa, QGemmIsa, SGemmIsa};
use crate::kernels::table::{Entry, KernelTable};

/// What the running CPU supports beyond baseline NEON.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    pub dotprod: bool,
    pub i8mm: bool,
}

impl Features {
    /// Detects the features.
    pub fn detect() -> Self {
        #[cfg(feature = "std")]
        {
            Features {
                dotprod: std::arch::is_aarch64_feature_detected!("dotprod"),
                i8mm: std::arch::is_aarch64_feature_detected!("i8mm"),
            }
        }
        #[cfg(not(feature = "std"))]
        {
            Features {
                dotprod: cfg!(target_feature = "dotprod"),
                i8mm: cfg!(target_feature = "i8mm"),
            }
        }
    }
}

/// The baseline NEON int8 GEMM (SMULL + SADALP: 4 MACs per instruction).
pub const NEON_QGEMM: QGemmIsa = QGemmIsa {
    name: "neon_qgemm_i8_2x16",
    im2col_name: "neon_qconv_im2col_i8_2x16",
    nr: 16,
    kr: 4,
    x_bias: 0,
    run: neon::neon_qgemm_i8,
};

/// The dotprod int8 GEMM (SDOT: 16 MACs per instruction).
pub const DOT_QGEMM: QGemmIsa = QGemmIsa {
    name: "neon_dot_qgemm_i8_4x16",
    im2col_name: "neon_dot_qconv_im2col_i8_4x16",
    nr: 16,
    kr: 4,
    x_bias: 0,
    run: neon::dot_qgemm_i8,
};

/// The i8mm int8 GEMM (SMMLA: 32 MACs per instruction, 4 rows × 16
/// channels per tile, weights packed 8 k per channel).
pub const MMLA_QGEMM: QGemmIsa = QGemmIsa {
    name: "neon_i8mm_qgemm_i8_4x16",
    im2col_name: "neon_i8mm_qconv_im2col_i8_4x16",
    nr: 16,
    kr: 8,
    x_bias: 0,
    run: neon::mmla_qgemm_i8,
};

/// The NEON f32 GEMM (6 rows × 16 channels per tile, `fmla` by element).
pub const NEON_SGEMM: SGemmIsa = SGemmIsa {
    name: "neon_sgemm_f32_6x16",
    im2col_name: "neon_sconv_im2col_f32_6x16",
    deconv_name: "neon_deconv_f32_6x16",
    nr: 16,
    run: neon::neon_sgemm_f32,
    run_window: Some(Entry {
        f: neon::neon_sgemm_window_f32,
        name: "neon_sconv_window_f32_6x16",
    }),
};

/// Plugs what `Features::detect()` allows.
pub fn plug(table: &mut KernelTable) {
    plug_with(table, Features::detect());
}

/// Plugs the kernels `f` allows.
pub fn plug_with(table: &mut KernelTable, f: Features) {
    table.qgemm = Some(if f.i8mm {
        MMLA_QGEMM
    } else if f.dotprod {
        DOT_QGEMM
    } else {
        NEON_QGEMM
    });
    table.sgemm = Some(NEON_SGEMM);
    table.sdw = Some(Entry {
        f: neon::neon_sdw_f32,
        name: "neon_dwconv_f32_16c",
    });
    table.qdw = Some(Entry {
        f: neon::neon_qdw_i8,
        name: "neon_dwconv_i8_16c",
    });
    table.qdot = Some(QDotIsa {
        name: "neon_fc_i8_dot16",
        x_bias: 0,
        run: neon::neon_qdot_i8,
    });
    table.sdot = Some(Entry {
        f: neon::neon_sdot_f32,
        name: "neon_fc_f32_dot16",
    });
    table.qadd = Some(Entry {
        f: neon::neon_qadd_i8,
        name: "neon_add_i8_16",
    });
    table.qadd_float = Some(Entry {
        f: neon::neon_qadd_float_i8,
        name: "neon_add_i8_f32fma_8",
    });
}

/// One table per aarch64 path this CPU runs: NEON, NEON + dotprod, and
/// NEON + i8mm.
pub fn variants() -> alloc::vec::Vec<(&'static str, KernelTable)> {
    let mut v = alloc::vec::Vec::new();
    let mut t = KernelTable::reference();
    plug_with(&mut t, Features::default());
    v.push(("neon", t));
    let f = Features::detect();
    if f.dotprod {
        let mut t = KernelTable::reference();
        plug_with(
            &mut t,
            Features {
                dotprod: true,
                i8mm: false,
            },
        );
        v.push(("neon+dotprod", t));
    }
    if f.i8mm {
        let mut t = KernelTable::reference();
        plug_with(
            &mut t,
            Features {
                dotprod: f.dotprod,
                i8mm: true,
            },
        );
        v.push(("neon+i8mm", t));
    }
    v
}
