//! Subnormal floats flushed to zero while a session runs.
//!
//! x86 computes with subnormal (denormal) operands and results through
//! microcode assists, tens of times slower per instruction. A network whose
//! values underflow spends most of its time there: EfficientNet-B0 with
//! untrained weights, whose squeeze-and-excitation sigmoids underflow, ran
//! 45.8 ms instead of 14.5. So a session sets MXCSR's flush-to-zero and
//! denormals-are-zero bits on the threads that run it (restored on the
//! calling thread when `invoke` returns; the pool's workers keep them), as
//! other inference runtimes do. Only values below 1.2e-38 in magnitude
//! change, to zero; integer kernels are untouched. ARM's NEON (armv7)
//! flushes subnormals anyway, and AArch64 cores handle them in hardware, so
//! elsewhere this does nothing.

/// Sets flush-to-zero and denormals-are-zero until dropped, then restores
/// the thread's previous setting.
pub struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = 0x8040;

impl FlushDenormals {
    /// Flushes subnormals on this thread until the guard is dropped.
    pub fn enter() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = mxcsr();
            set_mxcsr(saved | FTZ_DAZ);
            FlushDenormals { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        FlushDenormals {}
    }
}

impl Drop for FlushDenormals {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        set_mxcsr(self.saved);
    }
}

/// Flushes subnormals on this thread from now on (the pool's workers, which
/// run nothing but kernels).
pub fn flush_denormals_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    set_mxcsr(mxcsr() | FTZ_DAZ);
}

#[cfg(target_arch = "x86_64")]
fn mxcsr() -> u32 {
    let mut v = 0u32;
    // SAFETY: `stmxcsr` stores the 4-byte control/status register into `v`.
    unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
    v
}

#[cfg(target_arch = "x86_64")]
fn set_mxcsr(v: u32) {
    // SAFETY: `ldmxcsr` loads a valid MXCSR value (the current one with the
    // FTZ/DAZ bits changed: no reserved bits set, exceptions stay masked).
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, readonly)) };
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn subnormals_flush_inside_the_guard_only() {
        let tiny = core::hint::black_box(1e-38f32);
        let half = core::hint::black_box(0.5f32);
        assert!(tiny * half > 0.0, "subnormal product outside the guard");
        {
            let _g = FlushDenormals::enter();
            assert_eq!(core::hint::black_box(tiny) * half, 0.0);
        }
        assert!(tiny * half > 0.0, "the setting is restored");
    }
}
