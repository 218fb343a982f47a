//! Sessions: prepare once, run cheap.
//!
//! [`Session::new`] validates every op against its tensors, picks kernels
//! from the [`KernelTable`], computes requantization parameters, and
//! allocates the arena. [`Session::run`] / [`Session::invoke`] then only move
//! bytes and call kernels: no allocation, no kernel choice.

use alloc::vec::Vec;
use core::ops::Range;

use crate::error::{Error, Result, ShapeBuf};
use crate::kernels::KernelTable;
use crate::model::{AlignedBytes, Model};
use crate::ops::{self, Step};
use crate::types::{DType, Quant, Shape, Storage};

#[cfg(feature = "std")]
type PoolRef = crate::threads::Pool;
/// Without `std` there is no pool type; this stands in for it.
#[cfg(not(feature = "std"))]
type PoolRef = ();

/// Session settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Worker threads for kernels that split work (1 = run on the caller's thread).
    pub threads: usize,
    /// Refuse plans that need a larger arena than this (protects devices from
    /// a file that asks for more memory than they have).
    pub max_arena_bytes: usize,
    /// Kernel table to use; `None` picks the best for this CPU
    /// (`FERRITE_KERNELS=reference` forces the portable kernels).
    pub kernels: Option<KernelTable>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 1,
            max_arena_bytes: 1 << 30,
            kernels: None,
        }
    }
}

/// Name, dtype, shape and quantization of a graph input or output.
#[derive(Debug, Clone, PartialEq)]
pub struct IoInfo {
    pub name: alloc::string::String,
    pub tensor: usize,
    pub dtype: DType,
    pub shape: Shape,
    pub quant: Quant,
    /// Where the tensor lives in the arena.
    range: Range<usize>,
}

impl IoInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.numel()
    }
}

/// A borrowed, read-only tensor: dtype, shape and little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// A view of f32 data with `shape`.
    pub fn f32(data: &'a [f32], shape: &'a [usize]) -> Self {
        TensorView {
            dtype: DType::F32,
            shape,
            data: bytemuck::cast_slice(data),
        }
    }
    /// A view of i8 data with `shape`.
    pub fn i8(data: &'a [i8], shape: &'a [usize]) -> Self {
        TensorView {
            dtype: DType::I8,
            shape,
            data: bytemuck::cast_slice(data),
        }
    }
}

/// A borrowed, writable tensor the session copies an output into.
#[derive(Debug)]
pub struct TensorViewMut<'a> {
    pub dtype: DType,
    pub shape: &'a [usize],
    pub data: &'a mut [u8],
}

impl<'a> TensorViewMut<'a> {
    /// A writable view of f32 data with `shape`.
    pub fn f32(data: &'a mut [f32], shape: &'a [usize]) -> Self {
        TensorViewMut {
            dtype: DType::F32,
            shape,
            data: bytemuck::cast_slice_mut(data),
        }
    }
    /// A writable view of i8 data with `shape`.
    pub fn i8(data: &'a mut [i8], shape: &'a [usize]) -> Self {
        TensorViewMut {
            dtype: DType::I8,
            shape,
            data: bytemuck::cast_slice_mut(data),
        }
    }
}

/// A prepared model, ready to run.
pub struct Session<'m> {
    model: &'m Model<'m>,
    arena: AlignedBytes,
    steps: Vec<Step>,
    /// The steps of each op, in op order.
    op_steps: Vec<Range<usize>>,
    kernel_names: Vec<&'static str>,
    inputs: Vec<IoInfo>,
    outputs: Vec<IoInfo>,
    /// Workers for `options.threads > 1` (std only; `None` runs every
    /// kernel on the caller's thread with no synchronisation).
    #[cfg(feature = "std")]
    pool: Option<crate::threads::Pool>,
}

impl core::fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("arena", &self.arena.as_slice().len())
            .field("steps", &self.steps.len())
            .finish()
    }
}

fn io_info(model: &Model<'_>, t: usize) -> IoInfo {
    let td = &model.tensors()[t];
    let start = match td.storage {
        Storage::Arena { offset } => offset,
        Storage::Const { .. } => 0,
    };
    IoInfo {
        name: td.name.clone(),
        tensor: t,
        dtype: td.dtype,
        shape: td.shape,
        quant: td.quant.clone(),
        range: start..start + td.nbytes(),
    }
}

impl<'m> Session<'m> {
    /// Validates every op, chooses kernels and allocates the arena.
    ///
    /// Errors: [`Error::UnsupportedConfig`] / [`Error::ShapeMismatch`] for an
    /// op whose tensors don't fit it, [`Error::ArenaTooSmall`] when the plan
    /// exceeds `options.max_arena_bytes` or memory is short.
    pub fn new(model: &'m Model<'m>, options: Options) -> Result<Self> {
        let def = model.def();
        if def.arena_bytes > options.max_arena_bytes {
            return Err(Error::ArenaTooSmall {
                needed: def.arena_bytes,
                available: options.max_arena_bytes,
            });
        }
        let table = options.kernels.unwrap_or_else(KernelTable::detect);
        let mut steps = Vec::new();
        let mut kernel_names = Vec::with_capacity(def.ops.len());
        let mut op_steps = Vec::with_capacity(def.ops.len());
        for (i, op) in def.ops.iter().enumerate() {
            let first = steps.len();
            let name = ops::prepare(model, i, op, &table, &mut steps)?;
            op_steps.push(first..steps.len());
            kernel_names.push(name);
        }
        let arena = AlignedBytes::zeroed(def.arena_bytes)?;
        #[cfg(feature = "std")]
        let pool = if options.threads > 1 {
            Some(
                crate::threads::Pool::new(options.threads)
                    .map_err(|_| Error::BackendUnavailable("threads"))?,
            )
        } else {
            None
        };
        let inputs = def.inputs.iter().map(|&t| io_info(model, t)).collect();
        let outputs = def.outputs.iter().map(|&t| io_info(model, t)).collect();
        Ok(Session {
            model,
            arena,
            steps,
            op_steps,
            kernel_names,
            inputs,
            outputs,
            #[cfg(feature = "std")]
            pool,
        })
    }

    /// Threads that kernels split work over (1 without `std`).
    pub fn threads(&self) -> usize {
        #[cfg(feature = "std")]
        if let Some(p) = &self.pool {
            return p.threads();
        }
        1
    }

    /// Runs `f` with this session's thread pool current (see `crate::threads`).
    fn with_threads<R>(pool: Option<&PoolRef>, f: impl FnOnce() -> R) -> R {
        // Subnormals flushed while the kernels run (see `fpu`).
        let _flush = crate::fpu::FlushDenormals::enter();
        #[cfg(feature = "std")]
        {
            crate::threads::scoped(pool, f)
        }
        #[cfg(not(feature = "std"))]
        {
            let _ = pool;
            f()
        }
    }

    /// The model this session runs.
    pub fn model(&self) -> &'m Model<'m> {
        self.model
    }

    /// Graph inputs, in order.
    pub fn inputs(&self) -> &[IoInfo] {
        &self.inputs
    }

    /// Graph outputs, in order.
    pub fn outputs(&self) -> &[IoInfo] {
        &self.outputs
    }

    /// Input `i` (panics if out of range; see [`Session::inputs`]).
    pub fn input_info(&self, i: usize) -> &IoInfo {
        &self.inputs[i]
    }

    /// The kernel chosen for each op, in op order.
    pub fn kernel_names(&self) -> &[&'static str] {
        &self.kernel_names
    }

    /// Copies `data` (little-endian bytes) into input `i`, checking dtype and shape.
    pub fn set_input(&mut self, i: usize, view: TensorView<'_>) -> Result<()> {
        let info = self.inputs.get(i).ok_or(Error::WrongArity {
            what: "input index",
            expected: self.inputs.len(),
            got: i + 1,
        })?;
        if view.dtype != info.dtype {
            return Err(Error::DTypeMismatch {
                tensor: info.tensor,
                expected: info.dtype,
                got: view.dtype,
            });
        }
        let numel: usize = view.shape.iter().product();
        if view.shape != info.shape.dims() || view.data.len() != numel * view.dtype.size() {
            return Err(Error::ShapeMismatch {
                op: usize::MAX,
                tensor: info.tensor,
                expected: ShapeBuf::from_dims(info.shape.dims()),
                got: ShapeBuf::from_dims(view.shape),
            });
        }
        self.arena.as_mut_slice()[info.range.clone()].copy_from_slice(view.data);
        Ok(())
    }

    /// Copies f32 `data` into input `i` (its shape must be the input's).
    pub fn set_input_f32(&mut self, i: usize, data: &[f32]) -> Result<()> {
        let shape = self.inputs.get(i).map(|x| x.shape).unwrap_or_default();
        self.set_input(i, TensorView::f32(data, shape.dims()))
    }

    /// Runs every op on the current inputs. Allocates nothing.
    pub fn invoke(&mut self) -> Result<()> {
        let consts = self.model.bytes();
        let data_start = self.model.def().data.start;
        #[cfg(feature = "std")]
        let pool = self.pool.as_ref();
        #[cfg(not(feature = "std"))]
        let pool = None;
        let arena = self.arena.as_mut_slice();
        let steps = &self.steps;
        Self::with_threads(pool, || {
            for step in steps {
                step.run(arena, &consts[data_start..]);
            }
        });
        Ok(())
    }

    /// Runs every op like [`Session::invoke`], calling `observe(op, outputs)`
    /// after each op with views of that op's output tensors (in the op's
    /// output order). For calibration and debugging: unlike `invoke`, this
    /// allocates (one small list per op).
    pub fn invoke_observed(&mut self, observe: impl FnMut(usize, &[TensorView<'_>])) -> Result<()> {
        self.invoke_first_observed(self.op_steps.len(), observe)
    }

    /// [`Session::invoke_observed`] for the first `ops` ops only (all of
    /// them when `ops` is larger): what a measurement of an early op needs.
    /// The outputs are not computed.
    pub fn invoke_first_observed(
        &mut self,
        ops: usize,
        mut observe: impl FnMut(usize, &[TensorView<'_>]),
    ) -> Result<()> {
        let consts = self.model.bytes();
        let def = self.model.def();
        let data = &consts[def.data.start..];
        for (i, range) in self.op_steps.iter().enumerate().take(ops) {
            #[cfg(feature = "std")]
            let pool = self.pool.as_ref();
            #[cfg(not(feature = "std"))]
            let pool = None;
            let steps = &self.steps[range.clone()];
            let arena = self.arena.as_mut_slice();
            Self::with_threads(pool, || {
                for step in steps {
                    step.run(arena, data);
                }
            });
            let arena = self.arena.as_slice();
            let views: Vec<TensorView<'_>> = def.ops[i]
                .outputs
                .iter()
                .filter_map(|&t| {
                    let td = def.tensors.get(usize::try_from(t).ok()?)?;
                    let Storage::Arena { offset } = td.storage else {
                        return None;
                    };
                    Some(TensorView {
                        dtype: td.dtype,
                        shape: td.shape.dims(),
                        data: &arena[offset..offset + td.nbytes()],
                    })
                })
                .collect();
            observe(i, &views);
        }
        Ok(())
    }

    /// The bytes of output `i` after [`Session::invoke`].
    pub fn output(&self, i: usize) -> Result<TensorView<'_>> {
        let info = self.outputs.get(i).ok_or(Error::WrongArity {
            what: "output index",
            expected: self.outputs.len(),
            got: i + 1,
        })?;
        Ok(TensorView {
            dtype: info.dtype,
            shape: info.shape.dims(),
            data: &self.arena.as_slice()[info.range.clone()],
        })
    }

    /// Output `i` as f32 values (errors if it is not f32).
    pub fn output_f32(&self, i: usize) -> Result<&[f32]> {
        let v = self.output(i)?;
        if v.dtype != DType::F32 {
            return Err(Error::DTypeMismatch {
                tensor: self.outputs[i].tensor,
                expected: DType::F32,
                got: v.dtype,
            });
        }
        Ok(bytemuck::cast_slice(v.data))
    }

    /// Sets all inputs, runs, and copies all outputs: `inputs` and `outputs`
    /// in graph order, each checked for dtype and shape. Allocates nothing.
    pub fn run(
        &mut self,
        inputs: &[TensorView<'_>],
        outputs: &mut [TensorViewMut<'_>],
    ) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::WrongArity {
                what: "inputs",
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        if outputs.len() != self.outputs.len() {
            return Err(Error::WrongArity {
                what: "outputs",
                expected: self.outputs.len(),
                got: outputs.len(),
            });
        }
        for (k, info) in self.outputs.iter().enumerate() {
            let o = &outputs[k];
            if o.dtype != info.dtype {
                return Err(Error::DTypeMismatch {
                    tensor: info.tensor,
                    expected: info.dtype,
                    got: o.dtype,
                });
            }
            if o.shape != info.shape.dims() || o.data.len() != info.range.len() {
                return Err(Error::ShapeMismatch {
                    op: usize::MAX,
                    tensor: info.tensor,
                    expected: ShapeBuf::from_dims(info.shape.dims()),
                    got: ShapeBuf::from_dims(o.shape),
                });
            }
        }
        for (i, v) in inputs.iter().enumerate() {
            self.set_input(i, *v)?;
        }
        self.invoke()?;
        let arena = self.arena.as_slice();
        for (info, o) in self.outputs.iter().zip(outputs.iter_mut()) {
            o.data.copy_from_slice(&arena[info.range.clone()]);
        }
        Ok(())
    }
}
