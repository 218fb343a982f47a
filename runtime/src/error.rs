//! The runtime's one error type. `no_std`-friendly: every variant carries
//! plain data (static strings, indices, small inline shapes), never a heap
//! string, so building an error never allocates.

use core::fmt;

/// Everything that can go wrong when loading a `.fer` package, preparing a
/// session or running it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a `.fer` package (bad magic) or use a format version this
    /// runtime does not read.
    BadMagic,
    /// The file's format version is newer (or older) than what this runtime reads.
    UnsupportedVersion { found: u32, supported: u32 },
    /// The checksum stored in the header does not match the bytes.
    ChecksumMismatch { stored: u32, computed: u32 },
    /// A structure ran past the end of its section or of the file.
    Truncated { what: &'static str },
    /// An offset, length or count is out of bounds or overflows.
    OutOfBounds { what: &'static str, index: usize },
    /// A structure that must be aligned is not (constant data, the buffer itself).
    Misaligned {
        what: &'static str,
        index: usize,
        align: usize,
    },
    /// A field holds a value that is not allowed (unknown dtype, negative dim, ...).
    InvalidField { what: &'static str, index: usize },
    /// A tensor index in an op or in the inputs/outputs list is out of range,
    /// or a tensor is read before anything wrote it.
    BadTensorRef { op: usize, tensor: i64 },
    /// Quantization parameters are invalid (scale not finite or <= 0,
    /// zero-point out of range for the dtype, per-axis sizes wrong).
    BadQuantization { tensor: usize },
    /// The memory plan is invalid: a tensor outside the arena, or two tensors
    /// alive at the same time sharing bytes.
    BadPlan { tensor: usize, other: usize },
    /// The op code is unknown to this runtime.
    UnsupportedOp { op: usize, code: u16 },
    /// The op exists but not for this combination of dtypes / options.
    UnsupportedConfig {
        op: usize,
        name: &'static str,
        why: &'static str,
    },
    /// A tensor's stored shape disagrees with what the op computes, or an input
    /// given to `run` has the wrong shape.
    ShapeMismatch {
        op: usize,
        tensor: usize,
        expected: ShapeBuf,
        got: ShapeBuf,
    },
    /// An input or output given to `run` has the wrong dtype.
    DTypeMismatch {
        tensor: usize,
        expected: crate::DType,
        got: crate::DType,
    },
    /// `run` was given the wrong number of inputs or outputs.
    WrongArity {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The arena given to the session is smaller than the plan needs.
    ArenaTooSmall { needed: usize, available: usize },
    /// A name (input, output, metadata key) was not found.
    NotFound { what: &'static str },
    /// An I/O error while reading a model file (std only; the kind is kept).
    #[cfg(feature = "std")]
    Io(std::io::ErrorKind),
    /// A backend (OpenCL, ...) is not compiled in or not present.
    BackendUnavailable(&'static str),
}

/// A shape kept inline in an error, so errors never allocate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShapeBuf {
    dims: [u32; 8],
    rank: u8,
}

impl ShapeBuf {
    /// Copies up to 8 dimensions (more are truncated, marked by `rank` 255).
    pub fn from_dims(dims: &[usize]) -> Self {
        let mut out = [0u32; 8];
        for (o, d) in out.iter_mut().zip(dims) {
            *o = (*d).min(u32::MAX as usize) as u32;
        }
        let rank = if dims.len() > 8 {
            255
        } else {
            dims.len() as u8
        };
        ShapeBuf { dims: out, rank }
    }
    /// The dimensions kept.
    pub fn dims(&self) -> &[u32] {
        &self.dims[..(self.rank as usize).min(8)]
    }
}

impl fmt::Debug for ShapeBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ShapeBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.dims().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        if self.rank == 255 {
            f.write_str(", ...")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            BadMagic => write!(f, "not a .fer package (bad magic bytes)"),
            UnsupportedVersion { found, supported } => write!(
                f,
                "unsupported .fer format version {found} (this runtime reads version {supported})"
            ),
            ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch: header says {stored:#010x}, bytes give {computed:#010x} (file corrupted?)"
            ),
            Truncated { what } => write!(f, "truncated package: {what} runs past the end"),
            OutOfBounds { what, index } => write!(f, "{what} #{index} is out of bounds"),
            Misaligned { what, index, align } => {
                write!(f, "{what} #{index} is not {align}-byte aligned")
            }
            InvalidField { what, index } => write!(f, "invalid {what} (#{index})"),
            BadTensorRef { op, tensor } => {
                write!(f, "op #{op} refers to tensor {tensor}, which is invalid")
            }
            BadQuantization { tensor } => write!(
                f,
                "tensor #{tensor} has invalid quantization (scale must be finite and > 0, zero-point in range)"
            ),
            BadPlan { tensor, other } => write!(
                f,
                "memory plan invalid: tensor #{tensor} overlaps tensor #{other} while both are alive (or lies outside the arena)"
            ),
            UnsupportedOp { op, code } => write!(f, "op #{op} has unknown op code {code}"),
            UnsupportedConfig { op, name, why } => write!(f, "op #{op} ({name}): {why}"),
            ShapeMismatch { op, tensor, expected, got } => write!(
                f,
                "shape mismatch at op #{op}, tensor #{tensor}: expected {expected}, got {got}"
            ),
            DTypeMismatch { tensor, expected, got } => write!(
                f,
                "dtype mismatch for tensor #{tensor}: expected {expected:?}, got {got:?}"
            ),
            WrongArity { what, expected, got } => {
                write!(f, "expected {expected} {what}, got {got}")
            }
            ArenaTooSmall { needed, available } => write!(
                f,
                "arena too small: the plan needs {needed} bytes, {available} available"
            ),
            NotFound { what } => write!(f, "{what} not found"),
            #[cfg(feature = "std")]
            Io(kind) => write!(f, "I/O error: {kind}"),
            BackendUnavailable(name) => {
                write!(f, "backend '{name}' is not available in this build or on this machine")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

#[cfg(feature = "std")]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.kind())
    }
}

/// Result alias used throughout the runtime.
pub type Result<T> = core::result::Result<T, Error>;
