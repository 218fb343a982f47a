//! x86_64: AVX-512 (+ VNNI for int8).

pub mod avx512;

use crate::kernels::pack::{QDotIsa, QGemmIsa, SGemmIsa};
use crate::kernels::table::{Entry, KernelTable};

/// What the running CPU supports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    pub avx512: bool,
    pub avx512_vnni: bool,
}

impl Features {
    /// Detects the features (at run time with `std`, from the build's
    /// enabled target features without).
    pub fn detect() -> Self {
        #[cfg(feature = "std")]
        {
            let avx512 = std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl");
            Features {
                avx512,
                avx512_vnni: avx512 && std::is_x86_feature_detected!("avx512vnni"),
            }
        }
        #[cfg(not(feature = "std"))]
        {
            let avx512 = cfg!(all(
                target_feature = "avx512f",
                target_feature = "avx512bw",
                target_feature = "avx512vl"
            ));
            Features {
                avx512,
                avx512_vnni: avx512 && cfg!(target_feature = "avx512vnni"),
            }
        }
    }
}

/// The AVX-512 VNNI int8 GEMM (6 rows × 64 channels per tile).
pub const VNNI_QGEMM: QGemmIsa = QGemmIsa {
    name: "avx512vnni_qgemm_i8_6x64",
    im2col_name: "avx512vnni_qconv_im2col_i8_6x64",
    nr: 16,
    kr: 4,
    x_bias: 128,
    run: avx512::vnni_qgemm_i8,
};

/// The AVX-512 f32 GEMM (6 rows × 64 channels per tile).
pub const AVX512_SGEMM: SGemmIsa = SGemmIsa {
    name: "avx512_sgemm_f32_6x64",
    im2col_name: "avx512_sconv_im2col_f32_6x64",
    deconv_name: "avx512_deconv_f32_6x64",
    nr: 16,
    run: avx512::avx512_sgemm_f32,
    run_window: Some(Entry {
        f: avx512::avx512_sgemm_window_f32,
        name: "avx512_sconv_window_f32_6x64",
    }),
};

/// Plugs what `Features::detect()` allows.
pub fn plug(table: &mut KernelTable) {
    plug_with(table, Features::detect());
}

/// Plugs the kernels `f` allows (tests use it to pick one ISA path).
pub fn plug_with(table: &mut KernelTable, f: Features) {
    if f.avx512 {
        table.sgemm = Some(AVX512_SGEMM);
        table.sdw = Some(Entry {
            f: avx512::avx512_sdw_f32,
            name: "avx512_dwconv_f32_16c",
        });
        table.sdot = Some(Entry {
            f: avx512::avx512_sdot_f32,
            name: "avx512_fc_f32_dot16",
        });
        table.qdw = Some(Entry {
            f: avx512::avx512_qdw_i8,
            name: "avx512_dwconv_i8_32c",
        });
        table.qadd = Some(Entry {
            f: avx512::avx512_qadd_i8,
            name: "avx512_add_i8_16",
        });
        table.qadd_float = Some(Entry {
            f: avx512::avx512_qadd_float_i8,
            name: "avx512_add_i8_f32fma_16",
        });
        table.swish_f32 = Some(Entry {
            f: avx512::avx512_swish_f32,
            name: "avx512_swish_f32_poly",
        });
        table.binary_f32 = Some(Entry {
            f: avx512::avx512_binary_f32,
            name: "avx512_binary_f32_split",
        });
        table.matmul_f32 = Some(Entry {
            f: avx512::avx512_matmul_f32,
            name: "avx512_batch_matmul_f32_8x32",
        });
        table.erf_f32 = Some(Entry {
            f: avx512::avx512_erf_f32,
            name: "avx512_erf_f32_poly",
        });
        table.logistic_f32 = Some(Entry {
            f: avx512::avx512_logistic_f32,
            name: "avx512_logistic_f32_poly",
        });
        table.softmax_f32 = Some(Entry {
            f: avx512::avx512_softmax_f32,
            name: "avx512_softmax_f32_poly",
        });
        table.gelu_f32 = Some(Entry {
            f: avx512::avx512_gelu_f32,
            name: "avx512_gelu_f32_poly",
        });
    }
    if f.avx512_vnni {
        table.qdw = Some(Entry {
            f: avx512::avx512vnni_qdw_i8,
            name: "avx512vnni_dwconv_i8_32c",
        });
        table.qgemm = Some(VNNI_QGEMM);
        table.qdot = Some(QDotIsa {
            name: "avx512vnni_fc_i8_dot64",
            x_bias: 128,
            run: avx512::vnni_qdot_i8,
        });
    }
}

/// One table per x86_64 path this CPU runs: AVX-512 without VNNI (f32 and
/// depthwise) and AVX-512 VNNI.
pub fn variants() -> alloc::vec::Vec<(&'static str, KernelTable)> {
    let f = Features::detect();
    let mut v = alloc::vec::Vec::new();
    if f.avx512 {
        let mut t = KernelTable::reference();
        plug_with(
            &mut t,
            Features {
                avx512: true,
                avx512_vnni: false,
            },
        );
        v.push(("avx512", t));
    }
    if f.avx512_vnni {
        let mut t = KernelTable::reference();
        plug_with(&mut t, f);
        v.push(("avx512vnni", t));
    }
    v
}
