//! Plain data describing a model's graph: dtypes, shapes, quantization,
//! tensors and ops, as the `.fer` package stores them.

use alloc::string::String;
use alloc::vec::Vec;

use crate::quant::QParams;

/// The most dimensions a tensor may have.
pub const MAX_RANK: usize = 8;

/// Element type of a tensor. The discriminants are the `.fer` encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DType {
    F32 = 0,
    I8 = 1,
    U8 = 2,
    I16 = 3,
    I32 = 4,
    I64 = 5,
    Bool = 6,
}

impl DType {
    /// Decodes the `.fer` byte; `None` for an unknown one.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::U8,
            3 => DType::I16,
            4 => DType::I32,
            5 => DType::I64,
            6 => DType::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 | DType::U8 | DType::Bool => 1,
            DType::I16 => 2,
            DType::F32 | DType::I32 => 4,
            DType::I64 => 8,
        }
    }

    /// The lowercase name used by the CLI, `.npy` headers aside.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::Bool => "bool",
        }
    }
}

/// A static tensor shape, kept inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shape {
    dims: [usize; MAX_RANK],
    rank: u8,
}

impl Shape {
    /// A shape from `dims`; `None` if there are more than [`MAX_RANK`].
    pub fn new(dims: &[usize]) -> Option<Self> {
        if dims.len() > MAX_RANK {
            return None;
        }
        let mut s = Shape {
            dims: [0; MAX_RANK],
            rank: dims.len() as u8,
        };
        s.dims[..dims.len()].copy_from_slice(dims);
        Some(s)
    }

    /// A scalar (rank 0, one element).
    pub fn scalar() -> Self {
        Shape::default()
    }

    /// The dimensions.
    #[inline]
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank as usize]
    }

    /// Number of dimensions.
    #[inline]
    pub fn rank(&self) -> usize {
        self.rank as usize
    }

    /// Number of elements; `None` on overflow.
    pub fn checked_numel(&self) -> Option<usize> {
        self.dims()
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Number of elements. Shapes inside a validated model never overflow.
    #[inline]
    pub fn numel(&self) -> usize {
        self.dims().iter().product()
    }

    /// Dimension `i`.
    #[inline]
    pub fn dim(&self, i: usize) -> usize {
        self.dims()[i]
    }
}

impl core::fmt::Debug for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.dims()).finish()
    }
}

/// How a tensor's integers map to real numbers.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Quant {
    /// Not quantized (float tensors, int32 shape tensors, ...).
    #[default]
    None,
    /// One scale and zero-point for the whole tensor.
    PerTensor(QParams),
    /// One scale and zero-point per index along `axis` (per-channel weights).
    PerAxis {
        axis: usize,
        scales: Vec<f32>,
        zero_points: Vec<i32>,
    },
}

impl Quant {
    /// The per-tensor parameters, if that is what this is.
    pub fn per_tensor(&self) -> Option<QParams> {
        match self {
            Quant::PerTensor(q) => Some(*q),
            _ => None,
        }
    }
}

/// Where a tensor's bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Constant data inside the package: `offset`/`len` relative to the data
    /// section (64-byte aligned), used in place.
    Const { offset: usize, len: usize },
    /// A slot in the session's arena, at the planned byte offset.
    Arena { offset: usize },
}

/// One tensor of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorDef {
    pub name: String,
    pub dtype: DType,
    pub shape: Shape,
    pub quant: Quant,
    pub storage: Storage,
}

impl TensorDef {
    /// Size of the tensor's data in bytes.
    pub fn nbytes(&self) -> usize {
        self.shape.numel() * self.dtype.size()
    }

    /// True for constant (weight) tensors.
    pub fn is_const(&self) -> bool {
        matches!(self.storage, Storage::Const { .. })
    }
}

/// One op of the graph as stored: a code, integer attributes (floats are
/// stored bit-cast), and tensor indices (`-1` = optional input absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpDef {
    pub code: crate::ops::OpCode,
    pub attrs: Vec<i32>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
}
