//! aarch64: NEON int8 GEMM (SMULL/SADALP, the Cortex-A72 / Raspberry Pi 4
//! path) and the dotprod variant (SDOT, Cortex-A76 / Raspberry Pi 5, Orin).
//!
//! NEON is part of the aarch64 baseline; dotprod is detected at run time
//! (`std`) or taken from the build's target features (`no_std`).

pub mod neon;

use crate::kernels::pack::QGemmIsa;
use crate::kernels::table::{Entry, KernelTable};

/// What the running CPU supports beyond baseline NEON.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    pub dotprod: bool,
}

impl Features {
    /// Detects the features.
    pub fn detect() -> Self {
        #[cfg(feature = "std")]
        {
            Features {
                dotprod: std::arch::is_aarch64_feature_detected!("dotprod"),
            }
        }
        #[cfg(not(feature = "std"))]
        {
            Features {
                dotprod: cfg!(target_feature = "dotprod"),
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

/// Plugs what `Features::detect()` allows.
pub fn plug(table: &mut KernelTable) {
    plug_with(table, Features::detect());
}

/// Plugs the kernels `f` allows.
pub fn plug_with(table: &mut KernelTable, f: Features) {
    table.qgemm = Some(if f.dotprod { DOT_QGEMM } else { NEON_QGEMM });
    table.qdw = Some(Entry {
        f: neon::neon_qdw_i8,
        name: "neon_dwconv_i8_8c",
    });
    table.qadd_float = Some(Entry {
        f: neon::neon_qadd_float_i8,
        name: "neon_add_i8_f32fma_8",
    });
}

/// One table per aarch64 path this CPU runs: NEON, and NEON + dotprod.
pub fn variants() -> alloc::vec::Vec<(&'static str, KernelTable)> {
    let mut v = alloc::vec::Vec::new();
    let mut t = KernelTable::reference();
    plug_with(&mut t, Features { dotprod: false });
    v.push(("neon", t));
    let f = Features::detect();
    if f.dotprod {
        let mut t = KernelTable::reference();
        plug_with(&mut t, f);
        v.push(("neon+dotprod", t));
    }
    v
}
