//! Architecture-specific kernels, plugged into a [`KernelTable`] at start-up.
//!
//! Each ISA lives in its own folder (`x86_64/avx512.rs`, `aarch64/neon.rs`,
//! ...). Its kernels are `#[target_feature]` `unsafe fn`s; the only way to
//! reach them is a table slot that [`plug`] fills after checking the CPU.
//! With `std` the check is run-time detection; without it, only the
//! features the build enables (`-C target-feature`) count.

use super::KernelTable;

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;

// A-profile arm (armv7 Linux), not Cortex-M (`target_os = "none"`), whose
// FPU has no NEON.
#[cfg(all(target_arch = "arm", not(target_os = "none")))]
pub mod arm;

/// Overwrites the slots of `table` that this CPU runs faster than the
/// reference. Never changes results: every kernel plugged here is
/// bit-identical (int8) or within tolerance (f32) of the reference.
pub fn plug(table: &mut KernelTable) {
    #[cfg(target_arch = "x86_64")]
    x86_64::plug(table);
    #[cfg(target_arch = "aarch64")]
    aarch64::plug(table);
    #[cfg(all(target_arch = "arm", not(target_os = "none")))]
    arm::plug(table);
    let _ = table;
}

/// Every optimized table this CPU can run, one per ISA path, each with a
/// short name (`"avx512"`, `"avx512vnni"`, `"neon"`, `"neon+dotprod"`), for
/// contract tests and benchmarks that compare paths against the reference.
/// Paths the CPU lacks are left out (tests print what they skip).
pub fn variants() -> alloc::vec::Vec<(&'static str, KernelTable)> {
    #[allow(unused_mut)]
    let mut v = alloc::vec::Vec::new();
    #[cfg(target_arch = "x86_64")]
    v.extend(x86_64::variants());
    #[cfg(target_arch = "aarch64")]
    v.extend(aarch64::variants());
    #[cfg(all(target_arch = "arm", not(target_os = "none")))]
    v.extend(arm::variants());
    v
}
