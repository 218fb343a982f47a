//! Bounds-checked, read-only access to FlatBuffers tables, vectors and strings.
//!
//! This is the small subset of the FlatBuffers binary format that the TFLite reader needs,
//! written so that no byte sequence can make it panic or read out of bounds:
//!
//! - a *uoffset* is a little-endian `u32` counted forward from its own position;
//! - a *table* starts with an `i32` soffset; `table_pos - soffset` is its *vtable*: `u16` vtable
//!   size in bytes, `u16` inline object size, then one `u16` offset per field (0 = absent);
//! - a *vector* (or string) is a `u32` element count followed by the elements.
//!
//! Every position is checked against the buffer (and every field against its table's inline
//! size) before it is read; arithmetic is checked, so offsets near `u32::MAX` fail cleanly.
//! Alignment is not required: values are read with `from_le_bytes`, so a misaligned but
//! otherwise valid file still reads correctly.
//!
//! Allocation is the caller's business: this module never allocates, and vector accessors
//! hand out lengths that are already known to fit in the buffer.

use core::fmt;

/// What went wrong while reading one FlatBuffers element.
///
/// The schema layer adds *where* (which tensor, which field); this says *what*.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FbProblem {
    /// An offset (to a table, vector or string) points outside the file.
    OffsetOutOfBounds,
    /// A table's vtable lies outside the file or has an impossible size.
    BadVtable,
    /// A table's inline object runs past the end of the file.
    TableRunsPastEnd,
    /// A field's vtable entry points outside its table's inline object.
    FieldOutsideTable,
    /// A vector's elements (count × element size) run past the end of the file.
    VectorRunsPastEnd,
}

/// A read failure: the schema field being read and the problem found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FbError {
    /// Schema name of the field or element being read, e.g. `"shape"`.
    pub field: &'static str,
    /// What was wrong with it.
    pub problem: FbProblem,
}

impl fmt::Display for FbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.problem {
            FbProblem::OffsetOutOfBounds => "offset points outside the file",
            FbProblem::BadVtable => "table has a corrupt vtable",
            FbProblem::TableRunsPastEnd => "table runs past end of file",
            FbProblem::FieldOutsideTable => "field lies outside its table",
            FbProblem::VectorRunsPastEnd => "vector runs past end of file",
        };
        write!(f, "{}: {}", self.field, what)
    }
}

/// Shorthand for results of this module.
pub(crate) type FbResult<T> = Result<T, FbError>;

fn err<T>(field: &'static str, problem: FbProblem) -> FbResult<T> {
    Err(FbError { field, problem })
}

/// Returns `buf[pos..pos + N]` as an array, or `None` when any of it lies outside `buf`.
fn read_array<const N: usize>(buf: &[u8], pos: usize) -> Option<[u8; N]> {
    let end = pos.checked_add(N)?;
    buf.get(pos..end)?.try_into().ok()
}

fn read_u16(buf: &[u8], pos: usize) -> Option<u16> {
    read_array(buf, pos).map(u16::from_le_bytes)
}

fn read_u32(buf: &[u8], pos: usize) -> Option<u32> {
    read_array(buf, pos).map(u32::from_le_bytes)
}

fn read_i32(buf: &[u8], pos: usize) -> Option<i32> {
    read_array(buf, pos).map(i32::from_le_bytes)
}

/// Follows the uoffset stored at `pos`; returns the absolute target position, checked to lie
/// inside `buf` (at least one byte must be addressable there).
fn follow_uoffset(buf: &[u8], pos: usize, field: &'static str) -> FbResult<usize> {
    let Some(off) = read_u32(buf, pos) else {
        return err(field, FbProblem::OffsetOutOfBounds);
    };
    match pos.checked_add(off as usize) {
        Some(target) if target < buf.len() => Ok(target),
        _ => err(field, FbProblem::OffsetOutOfBounds),
    }
}

/// A validated table: its inline object and its vtable both lie inside the buffer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Table<'a> {
    buf: &'a [u8],
    /// Absolute position of the table's inline object (its soffset).
    pos: usize,
    /// Size of the inline object in bytes, from the vtable.
    obj_size: usize,
    /// Absolute position of the vtable.
    vtable: usize,
    /// Size of the vtable in bytes (4 + 2 × number of field slots).
    vt_size: usize,
}

impl<'a> Table<'a> {
    /// Reads the root table whose uoffset sits at byte 0 of `buf`.
    pub(crate) fn root(buf: &'a [u8], what: &'static str) -> FbResult<Self> {
        let pos = follow_uoffset(buf, 0, what)?;
        Self::at(buf, pos, what)
    }

    /// Validates the table whose inline object starts at absolute position `pos`.
    fn at(buf: &'a [u8], pos: usize, what: &'static str) -> FbResult<Self> {
        let Some(soffset) = read_i32(buf, pos) else {
            return err(what, FbProblem::TableRunsPastEnd);
        };
        // The vtable sits at `pos - soffset`; compute in i64 so no value of soffset overflows.
        let vtable = pos as i64 - i64::from(soffset);
        if vtable < 0 || vtable as u64 > buf.len() as u64 {
            return err(what, FbProblem::BadVtable);
        }
        let vtable = vtable as usize;
        let (Some(vt_size), Some(obj_size)) = (read_u16(buf, vtable), read_u16(buf, vtable + 2))
        else {
            return err(what, FbProblem::BadVtable);
        };
        let (vt_size, obj_size) = (usize::from(vt_size), usize::from(obj_size));
        // A vtable holds at least its two size fields, and field slots are 2 bytes each.
        if vt_size < 4 || vt_size % 2 != 0 || vtable + vt_size > buf.len() {
            return err(what, FbProblem::BadVtable);
        }
        // The inline object holds at least the soffset itself.
        if obj_size < 4 || pos + obj_size > buf.len() {
            return err(what, FbProblem::TableRunsPastEnd);
        }
        Ok(Self {
            buf,
            pos,
            obj_size,
            vtable,
            vt_size,
        })
    }

    /// Absolute position of field `id`'s inline value of `size` bytes, or `None` when the
    /// field is absent. Errors when the vtable entry points outside the inline object.
    fn field_pos(&self, id: u16, size: usize, name: &'static str) -> FbResult<Option<usize>> {
        let slot = 4 + 2 * usize::from(id);
        if slot + 2 > self.vt_size {
            // Fields newer than the writer's schema are simply absent.
            return Ok(None);
        }
        // In bounds: `vtable + vt_size <= buf.len()` was checked in `at`.
        let voffset = usize::from(read_u16(self.buf, self.vtable + slot).unwrap_or(0));
        if voffset == 0 {
            return Ok(None);
        }
        if voffset < 4 || voffset + size > self.obj_size {
            return err(name, FbProblem::FieldOutsideTable);
        }
        Ok(Some(self.pos + voffset))
    }

    /// Reads scalar field `id` as `N` raw little-endian bytes, if present.
    fn scalar<const N: usize>(&self, id: u16, name: &'static str) -> FbResult<Option<[u8; N]>> {
        Ok(self
            .field_pos(id, N, name)?
            // In bounds: `field_pos` checked the field lies inside the inline object.
            .and_then(|p| read_array::<N>(self.buf, p)))
    }

    /// Reads a `bool` field, or `default` when absent (any nonzero byte is `true`).
    pub(crate) fn bool(&self, id: u16, name: &'static str, default: bool) -> FbResult<bool> {
        Ok(self.scalar::<1>(id, name)?.map_or(default, |b| b[0] != 0))
    }

    /// Reads a `ubyte` field, or `default` when absent.
    pub(crate) fn u8(&self, id: u16, name: &'static str, default: u8) -> FbResult<u8> {
        Ok(self.scalar::<1>(id, name)?.map_or(default, |b| b[0]))
    }

    /// Reads a `byte` field, or `default` when absent.
    pub(crate) fn i8(&self, id: u16, name: &'static str, default: i8) -> FbResult<i8> {
        Ok(self
            .scalar::<1>(id, name)?
            .map_or(default, i8::from_le_bytes))
    }

    /// Reads an `int` field, or `default` when absent.
    pub(crate) fn i32(&self, id: u16, name: &'static str, default: i32) -> FbResult<i32> {
        Ok(self.scalar(id, name)?.map_or(default, i32::from_le_bytes))
    }

    /// Reads a `uint` field, or `default` when absent.
    pub(crate) fn u32(&self, id: u16, name: &'static str, default: u32) -> FbResult<u32> {
        Ok(self.scalar(id, name)?.map_or(default, u32::from_le_bytes))
    }

    /// Reads a `ulong` field, or `default` when absent.
    pub(crate) fn u64(&self, id: u16, name: &'static str, default: u64) -> FbResult<u64> {
        Ok(self.scalar(id, name)?.map_or(default, u64::from_le_bytes))
    }

    /// Reads a `float` field, or `default` when absent.
    pub(crate) fn f32(&self, id: u16, name: &'static str, default: f32) -> FbResult<f32> {
        Ok(self.scalar(id, name)?.map_or(default, f32::from_le_bytes))
    }

    /// Absolute target of the uoffset field `id`, if present.
    fn offset_field(&self, id: u16, name: &'static str) -> FbResult<Option<usize>> {
        match self.field_pos(id, 4, name)? {
            Some(p) => follow_uoffset(self.buf, p, name).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a sub-table field, if present.
    pub(crate) fn table(&self, id: u16, name: &'static str) -> FbResult<Option<Table<'a>>> {
        match self.offset_field(id, name)? {
            Some(p) => Table::at(self.buf, p, name).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a vector field of `T`, if present; its elements are known to lie in the buffer.
    pub(crate) fn vector<T: Elem>(
        &self,
        id: u16,
        name: &'static str,
    ) -> FbResult<Option<Vector<'a, T>>> {
        match self.offset_field(id, name)? {
            Some(p) => Vector::at(self.buf, p, name).map(Some),
            None => Ok(None),
        }
    }

    /// Reads a `[ubyte]` field as a borrowed slice, if present.
    pub(crate) fn bytes(&self, id: u16, name: &'static str) -> FbResult<Option<&'a [u8]>> {
        Ok(self.vector::<u8>(id, name)?.map(|v| v.as_bytes()))
    }

    /// Reads a `string` field as raw bytes (without the trailing NUL), if present.
    ///
    /// The NUL terminator FlatBuffers writes after a string is not required.
    pub(crate) fn str_bytes(&self, id: u16, name: &'static str) -> FbResult<Option<&'a [u8]>> {
        self.bytes(id, name)
    }
}

/// An element type a [`Vector`] can hold: fixed size, decoded from little-endian bytes.
pub(crate) trait Elem: Sized + 'static {
    /// Size of one element in the file, in bytes.
    const SIZE: usize;
    /// Decodes one element from exactly `SIZE` bytes.
    fn decode(bytes: &[u8]) -> Self;
}

macro_rules! impl_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn decode(bytes: &[u8]) -> Self {
                let mut raw = [0u8; core::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                <$t>::from_le_bytes(raw)
            }
        }
    )*};
}
impl_elem!(u8, i8, u16, i32, u32, i64, f32);

/// Marker element type for a vector of uoffsets to tables (`[SomeTable]` in a schema).
pub(crate) struct TableRef;

impl Elem for TableRef {
    const SIZE: usize = 4;
    fn decode(_: &[u8]) -> Self {
        TableRef
    }
}

/// A validated vector: `len` elements of `T::SIZE` bytes starting at `start` lie in the buffer.
#[derive(Debug)]
pub(crate) struct Vector<'a, T> {
    buf: &'a [u8],
    start: usize,
    len: usize,
    name: &'static str,
    _elem: core::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for Vector<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Vector<'_, T> {}

impl<'a, T: Elem> Vector<'a, T> {
    /// Validates the vector whose `u32` length prefix sits at absolute position `pos`.
    fn at(buf: &'a [u8], pos: usize, name: &'static str) -> FbResult<Self> {
        let Some(len) = read_u32(buf, pos) else {
            return err(name, FbProblem::VectorRunsPastEnd);
        };
        let len = len as usize;
        let start = pos + 4;
        let fits = len
            .checked_mul(T::SIZE)
            .and_then(|n| n.checked_add(start))
            .is_some_and(|end| end <= buf.len());
        if !fits {
            return err(name, FbProblem::VectorRunsPastEnd);
        }
        Ok(Self {
            buf,
            start,
            len,
            name,
            _elem: core::marker::PhantomData,
        })
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Element `i`, or `None` when `i >= len()`.
    pub(crate) fn get(&self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let p = self.start + i * T::SIZE;
        // In bounds: `at` checked that all `len` elements lie inside the buffer.
        self.buf.get(p..p + T::SIZE).map(T::decode)
    }

    /// All elements in order.
    pub(crate) fn iter(self) -> impl Iterator<Item = T> + 'a {
        (0..self.len).filter_map(move |i| self.get(i))
    }
}

impl<'a> Vector<'a, u8> {
    /// The vector's bytes, borrowed from the buffer.
    pub(crate) fn as_bytes(&self) -> &'a [u8] {
        // In bounds: checked in `at`; `get` keeps this total anyway.
        self.buf
            .get(self.start..self.start + self.len)
            .unwrap_or_default()
    }
}

impl<'a> Vector<'a, TableRef> {
    /// The table that element `i` points to.
    ///
    /// Errors when the offset or the table is out of bounds; `i` must be `< len()`.
    pub(crate) fn table(&self, i: usize) -> FbResult<Table<'a>> {
        if i >= self.len {
            return err(self.name, FbProblem::OffsetOutOfBounds);
        }
        let p = follow_uoffset(self.buf, self.start + 4 * i, self.name)?;
        Table::at(self.buf, p, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer whose root table has an `int` field (id 0) = 7 and a `ubyte` field (id 2)
    /// = 5, with field 1 absent: root offset at 0, vtable at 6, table at 16.
    fn tiny() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&16u32.to_le_bytes()); // root at 16
        b.extend_from_slice(&[0; 2]); // padding so the vtable sits at 6
        b.extend_from_slice(&10u16.to_le_bytes()); // [6] vtable size
        b.extend_from_slice(&12u16.to_le_bytes()); // [8] object size
        b.extend_from_slice(&4u16.to_le_bytes()); // [10] field 0 at +4
        b.extend_from_slice(&0u16.to_le_bytes()); // [12] field 1 absent
        b.extend_from_slice(&8u16.to_le_bytes()); // [14] field 2 at +8
        b.extend_from_slice(&10i32.to_le_bytes()); // [16] soffset: vtable at 16 - 10 = 6
        b.extend_from_slice(&7i32.to_le_bytes()); // [20] field 0
        b.extend_from_slice(&[5, 0, 0, 0]); // [24] field 2
        b
    }

    #[test]
    fn reads_present_absent_and_out_of_vtable_fields() {
        let b = tiny();
        let t = Table::root(&b, "root").unwrap();
        assert_eq!(t.i32(0, "f0", -1).unwrap(), 7);
        assert_eq!(t.i32(1, "f1", -1).unwrap(), -1);
        assert_eq!(t.u8(2, "f2", 0).unwrap(), 5);
        // Slot 3 is beyond the vtable: absent, default.
        assert_eq!(t.u32(3, "f3", 42).unwrap(), 42);
        // Reading field 2 as 8 bytes would leave the 12-byte object.
        assert_eq!(
            t.u64(2, "f2", 0).unwrap_err().problem,
            FbProblem::FieldOutsideTable
        );
    }

    #[test]
    fn rejects_corrupt_roots_and_vtables() {
        let b = tiny();
        // Root offset past the end.
        let mut bad = b.clone();
        bad[0..4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            Table::root(&bad, "root").unwrap_err().problem,
            FbProblem::OffsetOutOfBounds
        );
        // soffset pointing before the start of the file.
        let mut bad = b.clone();
        bad[16..20].copy_from_slice(&100i32.to_le_bytes());
        assert_eq!(
            Table::root(&bad, "root").unwrap_err().problem,
            FbProblem::BadVtable
        );
        // soffset of i32::MIN must not overflow.
        let mut bad = b.clone();
        bad[16..20].copy_from_slice(&i32::MIN.to_le_bytes());
        assert!(Table::root(&bad, "root").is_err());
        // Odd vtable size.
        let mut bad = b.clone();
        bad[6..8].copy_from_slice(&9u16.to_le_bytes());
        assert_eq!(
            Table::root(&bad, "root").unwrap_err().problem,
            FbProblem::BadVtable
        );
        // Object size past the end.
        let mut bad = b.clone();
        bad[8..10].copy_from_slice(&200u16.to_le_bytes());
        assert_eq!(
            Table::root(&bad, "root").unwrap_err().problem,
            FbProblem::TableRunsPastEnd
        );
        // Empty and tiny buffers.
        for n in 0..b.len() {
            let _ = Table::root(&b[..n], "root");
        }
    }

    #[test]
    fn vector_length_must_fit_before_use() {
        // [0] uoffset 4 → [4] len, then 2 i32 elements.
        let mut b = Vec::new();
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&(-3i32).to_le_bytes());
        b.extend_from_slice(&9i32.to_le_bytes());
        let v = Vector::<i32>::at(&b, 4, "v").unwrap();
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![-3, 9]);
        assert_eq!(v.get(2), None);
        b[4..8].copy_from_slice(&3u32.to_le_bytes());
        assert_eq!(
            Vector::<i32>::at(&b, 4, "v").unwrap_err().problem,
            FbProblem::VectorRunsPastEnd
        );
        b[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Vector::<i64>::at(&b, 4, "v").is_err());
    }
}
