//! The kernel table (filled later).

/// Function pointers for the hot kernels; `reference()` fills every slot.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelTable {}
