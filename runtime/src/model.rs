//! A loaded `.fer` package: validated graph plus the bytes its constants
//! live in, used in place.

use alloc::vec::Vec;

use crate::error::{Error, Result};
use crate::format::{self, MetaEntry, ModelDef};
use crate::types::{Storage, TensorDef};

/// Alignment required of the buffer a model is read from, so that constant
/// tensors (64-byte aligned inside the file) can be viewed as `&[f32]`/`&[i32]`
/// without copying.
pub const BUFFER_ALIGN: usize = 64;

/// A 64-byte aligned, heap-allocated byte buffer.
#[derive(Clone)]
pub struct AlignedBytes {
    blocks: Vec<Block>,
    len: usize,
}

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

// SAFETY: `Block` is plain bytes with no padding (64 bytes, align 64).
unsafe impl bytemuck::Zeroable for Block {}
unsafe impl bytemuck::Pod for Block {}

impl AlignedBytes {
    /// A zeroed buffer of `len` bytes. Fails instead of aborting when the
    /// allocation is impossible.
    pub fn zeroed(len: usize) -> Result<Self> {
        let n = len.div_ceil(64);
        let mut blocks = Vec::new();
        blocks
            .try_reserve_exact(n)
            .map_err(|_| Error::ArenaTooSmall {
                needed: len,
                available: 0,
            })?;
        blocks.resize(n, Block([0; 64]));
        Ok(AlignedBytes { blocks, len })
    }

    /// Copies `bytes` into a new aligned buffer.
    pub fn copy_from(bytes: &[u8]) -> Result<Self> {
        let mut b = Self::zeroed(bytes.len())?;
        b.as_mut_slice().copy_from_slice(bytes);
        Ok(b)
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.blocks)[..self.len]
    }

    /// The bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.blocks)[..self.len]
    }
}

enum Bytes<'a> {
    Borrowed(&'a [u8]),
    Owned(AlignedBytes),
    #[cfg(feature = "std")]
    Mapped(memmap2::Mmap),
}

impl Bytes<'_> {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Owned(b) => b.as_slice(),
            #[cfg(feature = "std")]
            Bytes::Mapped(m) => m,
        }
    }
}

/// A validated model. Constant tensors are views into the package bytes
/// (borrowed, memory-mapped or owned); nothing is copied at load.
pub struct Model<'a> {
    bytes: Bytes<'a>,
    def: ModelDef,
}

impl core::fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Model")
            .field("bytes", &self.bytes.get().len())
            .field("tensors", &self.def.tensors.len())
            .field("ops", &self.def.ops.len())
            .finish()
    }
}

impl<'a> Model<'a> {
    /// Validates `bytes` (a whole `.fer` file) and borrows it. The buffer must
    /// start on a 64-byte boundary ([`Error::Misaligned`] otherwise; use
    /// [`Model::from_vec`] or [`AlignedBytes`] for arbitrary buffers).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self> {
        if !(bytes.as_ptr() as usize).is_multiple_of(BUFFER_ALIGN) {
            return Err(Error::Misaligned {
                what: "model buffer",
                index: 0,
                align: BUFFER_ALIGN,
            });
        }
        let def = format::parse(bytes)?;
        Ok(Model {
            bytes: Bytes::Borrowed(bytes),
            def,
        })
    }

    /// Validates an owned, aligned buffer.
    pub fn from_aligned(bytes: AlignedBytes) -> Result<Model<'static>> {
        let def = format::parse(bytes.as_slice())?;
        Ok(Model {
            bytes: Bytes::Owned(bytes),
            def,
        })
    }

    /// Copies `bytes` into an aligned buffer and validates it (one copy at load).
    pub fn from_vec(bytes: &[u8]) -> Result<Model<'static>> {
        Model::from_aligned(AlignedBytes::copy_from(bytes)?)
    }

    /// Memory-maps and validates the file at `path` (`std` only).
    #[cfg(feature = "std")]
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Model<'static>> {
        let file = std::fs::File::open(path)?;
        // SAFETY: the mapping is read-only; as with any mmap, another process
        // truncating the file while it is mapped is outside what we can
        // defend against (the same holds for every mmap-based loader).
        let map = unsafe { memmap2::Mmap::map(&file)? };
        let def = format::parse(&map)?;
        Ok(Model {
            bytes: Bytes::Mapped(map),
            def,
        })
    }

    /// The decoded graph.
    pub fn def(&self) -> &ModelDef {
        &self.def
    }

    /// All tensors.
    pub fn tensors(&self) -> &[TensorDef] {
        &self.def.tensors
    }

    /// Graph input tensor indices, in order.
    pub fn inputs(&self) -> &[usize] {
        &self.def.inputs
    }

    /// Graph output tensor indices, in order.
    pub fn outputs(&self) -> &[usize] {
        &self.def.outputs
    }

    /// The whole package.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get()
    }

    /// The bytes of constant tensor `t` (empty for arena tensors).
    pub fn const_bytes(&self, t: usize) -> &[u8] {
        match self.def.tensors.get(t).map(|t| t.storage) {
            Some(Storage::Const { offset, len }) => {
                let start = self.def.data.start + offset;
                &self.bytes.get()[start..start + len]
            }
            _ => &[],
        }
    }

    /// A metadata entry by key.
    pub fn metadata(&self, key: &str) -> Option<&MetaEntry> {
        self.def.metadata.iter().find(|m| m.key == key)
    }

    /// The arena size the plan needs, in bytes.
    pub fn arena_bytes(&self) -> usize {
        self.def.arena_bytes
    }

    /// The largest total of bytes alive at one op (see [`format::arena_lower_bound`]).
    pub fn arena_lower_bound(&self) -> usize {
        format::arena_lower_bound(
            &self.def.tensors,
            &self.def.ops,
            &self.def.inputs,
            &self.def.outputs,
        )
    }
}
