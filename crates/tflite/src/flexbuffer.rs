//! A small, bounds-checked FlexBuffers reader for custom op options.
//!
//! TensorFlow Lite stores the attributes of custom ops (the detection
//! post-process op, the Edge TPU op) as a FlexBuffer map. The Edge TPU
//! compiler stores its executable as a FlexBuffer *string* holding binary
//! bytes, which UTF-8-checking readers reject; this reader hands out the raw
//! bytes of strings and blobs and validates nothing it is not asked for.
//! Every read is checked against the buffer: hostile bytes give an error,
//! never a panic.

use std::fmt;

/// Why a FlexBuffer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlexError {
    #[error("flexbuffer is too short ({0} bytes)")]
    TooShort(usize),
    #[error("flexbuffer offset or length out of bounds at byte {0}")]
    OutOfBounds(usize),
    #[error("flexbuffer has an invalid byte width {0}")]
    BadWidth(u8),
    #[error("flexbuffer value is a {found}, expected {expected}")]
    WrongType {
        expected: &'static str,
        found: FlexType,
    },
    #[error("flexbuffer nests deeper than {0} levels")]
    TooDeep(usize),
}

/// The FlexBuffers value types edgepipe distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlexType {
    Null,
    Int,
    UInt,
    Float,
    Key,
    String,
    IndirectInt,
    IndirectUInt,
    IndirectFloat,
    Map,
    Vector,
    TypedVector,
    FixedTypedVector,
    Blob,
    Bool,
    Other(u8),
}

impl fmt::Display for FlexType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlexType::Other(code) => write!(f, "type {code}"),
            other => write!(f, "{}", format!("{other:?}").to_lowercase()),
        }
    }
}

impl FlexType {
    fn from_code(code: u8) -> Self {
        match code {
            0 => FlexType::Null,
            1 => FlexType::Int,
            2 => FlexType::UInt,
            3 => FlexType::Float,
            4 => FlexType::Key,
            5 => FlexType::String,
            6 => FlexType::IndirectInt,
            7 => FlexType::IndirectUInt,
            8 => FlexType::IndirectFloat,
            9 => FlexType::Map,
            10 => FlexType::Vector,
            11..=15 | 36 => FlexType::TypedVector,
            16..=24 => FlexType::FixedTypedVector,
            25 => FlexType::Blob,
            26 => FlexType::Bool,
            other => FlexType::Other(other),
        }
    }
}

/// Deepest nesting followed when rendering values (guards hostile cycles).
const MAX_DEPTH: usize = 32;

/// One value inside a FlexBuffer.
#[derive(Clone, Copy)]
pub struct FlexRef<'a> {
    data: &'a [u8],
    /// Where the value (or the offset to it) is stored.
    pos: usize,
    /// Width of the slot at `pos`.
    parent_width: usize,
    /// Width of the pointed-to data (from the packed type).
    child_width: usize,
    ty: FlexType,
    /// Raw type code (for typed vectors' element types).
    code: u8,
}

impl fmt::Debug for FlexRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlexRef({} at {})", self.ty, self.pos)
    }
}

fn width(code: u8) -> usize {
    1 << (code & 3)
}

fn read_uint(data: &[u8], pos: usize, width: usize) -> Result<u64, FlexError> {
    let end = pos.checked_add(width).ok_or(FlexError::OutOfBounds(pos))?;
    let bytes = data.get(pos..end).ok_or(FlexError::OutOfBounds(pos))?;
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate() {
        value |= u64::from(*byte) << (8 * i);
    }
    Ok(value)
}

fn read_int(data: &[u8], pos: usize, width: usize) -> Result<i64, FlexError> {
    let raw = read_uint(data, pos, width)?;
    let shift = 64 - 8 * width as u32;
    // Sign-extend from `width` bytes.
    Ok(((raw << shift) as i64) >> shift)
}

fn read_float(data: &[u8], pos: usize, width: usize) -> Result<f64, FlexError> {
    let raw = read_uint(data, pos, width)?;
    match width {
        4 => Ok(f64::from(f32::from_bits(raw as u32))),
        8 => Ok(f64::from_bits(raw)),
        other => Err(FlexError::BadWidth(other as u8)),
    }
}

/// Follows an unsigned offset stored at `pos` (offsets point backwards).
fn follow(data: &[u8], pos: usize, width: usize) -> Result<usize, FlexError> {
    let offset = read_uint(data, pos, width)?;
    let offset = usize::try_from(offset).map_err(|_| FlexError::OutOfBounds(pos))?;
    pos.checked_sub(offset).ok_or(FlexError::OutOfBounds(pos))
}

/// The root value of a FlexBuffer.
pub fn root(data: &[u8]) -> Result<FlexRef<'_>, FlexError> {
    if data.len() < 3 {
        return Err(FlexError::TooShort(data.len()));
    }
    let root_width = usize::from(data[data.len() - 1]);
    if !matches!(root_width, 1 | 2 | 4 | 8) {
        return Err(FlexError::BadWidth(data[data.len() - 1]));
    }
    let packed = data[data.len() - 2];
    let pos = (data.len() - 2)
        .checked_sub(root_width)
        .ok_or(FlexError::TooShort(data.len()))?;
    Ok(FlexRef::new(data, pos, root_width, packed))
}

impl<'a> FlexRef<'a> {
    fn new(data: &'a [u8], pos: usize, parent_width: usize, packed: u8) -> Self {
        let code = packed >> 2;
        FlexRef {
            data,
            pos,
            parent_width,
            child_width: width(packed),
            ty: FlexType::from_code(code),
            code,
        }
    }

    pub fn flex_type(&self) -> FlexType {
        self.ty
    }

    /// Where an offset-typed value's data starts.
    fn target(&self) -> Result<usize, FlexError> {
        follow(self.data, self.pos, self.parent_width)
    }

    fn wrong(&self, expected: &'static str) -> FlexError {
        FlexError::WrongType {
            expected,
            found: self.ty,
        }
    }

    /// A signed integer (ints, unsigned ints that fit, bools).
    pub fn as_i64(&self) -> Result<i64, FlexError> {
        match self.ty {
            FlexType::Int => read_int(self.data, self.pos, self.parent_width),
            FlexType::UInt | FlexType::Bool => {
                let v = read_uint(self.data, self.pos, self.parent_width)?;
                i64::try_from(v).map_err(|_| self.wrong("int"))
            }
            FlexType::IndirectInt => read_int(self.data, self.target()?, self.child_width),
            FlexType::IndirectUInt => {
                let v = read_uint(self.data, self.target()?, self.child_width)?;
                i64::try_from(v).map_err(|_| self.wrong("int"))
            }
            _ => Err(self.wrong("int")),
        }
    }

    /// A floating-point number (integers convert).
    pub fn as_f64(&self) -> Result<f64, FlexError> {
        match self.ty {
            FlexType::Float => read_float(self.data, self.pos, self.parent_width),
            FlexType::IndirectFloat => read_float(self.data, self.target()?, self.child_width),
            FlexType::Int | FlexType::UInt | FlexType::IndirectInt | FlexType::IndirectUInt => {
                self.as_i64().map(|v| v as f64)
            }
            _ => Err(self.wrong("float")),
        }
    }

    /// A boolean (integers: non-zero is true).
    pub fn as_bool(&self) -> Result<bool, FlexError> {
        match self.ty {
            FlexType::Bool => Ok(read_uint(self.data, self.pos, self.parent_width)? != 0),
            _ => self.as_i64().map(|v| v != 0),
        }
    }

    /// The raw bytes of a string or blob, without UTF-8 validation.
    pub fn as_bytes(&self) -> Result<&'a [u8], FlexError> {
        match self.ty {
            FlexType::String | FlexType::Blob => {
                let start = self.target()?;
                let len_pos = start
                    .checked_sub(self.child_width)
                    .ok_or(FlexError::OutOfBounds(start))?;
                let len = read_uint(self.data, len_pos, self.child_width)?;
                let len = usize::try_from(len).map_err(|_| FlexError::OutOfBounds(len_pos))?;
                let end = start
                    .checked_add(len)
                    .ok_or(FlexError::OutOfBounds(start))?;
                self.data
                    .get(start..end)
                    .ok_or(FlexError::OutOfBounds(start))
            }
            FlexType::Key => {
                let start = self.target()?;
                let rest = self
                    .data
                    .get(start..)
                    .ok_or(FlexError::OutOfBounds(start))?;
                let len = rest
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or(FlexError::OutOfBounds(start))?;
                Ok(&rest[..len])
            }
            _ => Err(self.wrong("string")),
        }
    }

    /// A string (lossy for invalid UTF-8).
    pub fn as_string(&self) -> Result<String, FlexError> {
        self.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// A map's entries, in key order.
    pub fn as_map(&self) -> Result<FlexMap<'a>, FlexError> {
        if self.ty != FlexType::Map {
            return Err(self.wrong("map"));
        }
        let values = self.target()?;
        let w = self.child_width;
        let len_pos = values
            .checked_sub(w)
            .ok_or(FlexError::OutOfBounds(values))?;
        let len = read_uint(self.data, len_pos, w)?;
        let keys_slot = values
            .checked_sub(3 * w)
            .ok_or(FlexError::OutOfBounds(values))?;
        let keys = follow(self.data, keys_slot, w)?;
        let key_width = read_uint(self.data, values - 2 * w, w)?;
        let key_width = usize::try_from(key_width).map_err(|_| FlexError::OutOfBounds(values))?;
        if !matches!(key_width, 1 | 2 | 4 | 8) {
            return Err(FlexError::BadWidth(key_width.min(255) as u8));
        }
        let len = checked_len(self.data, values, len, w)?;
        // Keys vector must hold `len` entries too.
        checked_span(self.data, keys, len, key_width)?;
        Ok(FlexMap {
            data: self.data,
            values,
            keys,
            len,
            width: w,
            key_width,
        })
    }

    /// An untyped or typed vector's elements.
    pub fn as_vector(&self) -> Result<Vec<FlexRef<'a>>, FlexError> {
        let start = match self.ty {
            FlexType::Vector | FlexType::TypedVector | FlexType::Map => self.target()?,
            _ => return Err(self.wrong("vector")),
        };
        let w = self.child_width;
        let len_pos = start.checked_sub(w).ok_or(FlexError::OutOfBounds(start))?;
        let len = read_uint(self.data, len_pos, w)?;
        let len = checked_len(self.data, start, len, w)?;
        let mut out = Vec::with_capacity(len);
        for i in 0..len {
            let pos = start + i * w;
            let packed = match self.ty {
                FlexType::TypedVector => {
                    // Element type code, stored with the element width.
                    let element = match self.code {
                        11 => 1,
                        12 => 2,
                        13 => 3,
                        14 => 4,
                        15 => 5,
                        36 => 26,
                        _ => 0,
                    };
                    (element << 2) | (self.child_width.trailing_zeros() as u8)
                }
                _ => *self
                    .data
                    .get(start + len * w + i)
                    .ok_or(FlexError::OutOfBounds(start))?,
            };
            out.push(FlexRef::new(self.data, pos, w, packed));
        }
        Ok(out)
    }

    /// A JSON-like rendering for reports (binary strings summarised by length).
    pub fn render(&self) -> String {
        self.render_at(0)
    }

    fn render_at(&self, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return "…".to_owned();
        }
        match self.ty {
            FlexType::Null => "null".to_owned(),
            FlexType::Bool => self
                .as_bool()
                .map(|b| b.to_string())
                .unwrap_or_else(|e| e.to_string()),
            FlexType::Int | FlexType::UInt | FlexType::IndirectInt | FlexType::IndirectUInt => self
                .as_i64()
                .map(|v| v.to_string())
                .unwrap_or_else(|e| e.to_string()),
            FlexType::Float | FlexType::IndirectFloat => self
                .as_f64()
                .map(|v| v.to_string())
                .unwrap_or_else(|e| e.to_string()),
            FlexType::String | FlexType::Key | FlexType::Blob => match self.as_bytes() {
                Ok(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) if !text.contains('\0') => format!("{text:?}"),
                    _ => format!("<{} bytes>", bytes.len()),
                },
                Err(e) => e.to_string(),
            },
            FlexType::Map => match self.as_map() {
                Ok(map) => {
                    let entries: Vec<String> = map
                        .entries()
                        .map(|(k, v)| format!("{k:?}: {}", v.render_at(depth + 1)))
                        .collect();
                    format!("{{{}}}", entries.join(", "))
                }
                Err(e) => e.to_string(),
            },
            FlexType::Vector | FlexType::TypedVector => match self.as_vector() {
                Ok(items) => {
                    let items: Vec<String> = items.iter().map(|v| v.render_at(depth + 1)).collect();
                    format!("[{}]", items.join(", "))
                }
                Err(e) => e.to_string(),
            },
            other => format!("<{other}>"),
        }
    }
}

/// Checks that `len` elements of `width` bytes from `start` (plus their type
/// bytes) lie inside the buffer, and returns `len` as usize.
fn checked_len(data: &[u8], start: usize, len: u64, width: usize) -> Result<usize, FlexError> {
    let len = usize::try_from(len).map_err(|_| FlexError::OutOfBounds(start))?;
    checked_span(data, start, len, width)?;
    Ok(len)
}

fn checked_span(data: &[u8], start: usize, len: usize, width: usize) -> Result<(), FlexError> {
    let bytes = len
        .checked_mul(width)
        .ok_or(FlexError::OutOfBounds(start))?;
    let end = start
        .checked_add(bytes)
        .ok_or(FlexError::OutOfBounds(start))?;
    if end > data.len() {
        Err(FlexError::OutOfBounds(start))
    } else {
        Ok(())
    }
}

/// A FlexBuffer map: sorted keys and their values.
#[derive(Debug, Clone, Copy)]
pub struct FlexMap<'a> {
    data: &'a [u8],
    values: usize,
    keys: usize,
    len: usize,
    width: usize,
    key_width: usize,
}

impl<'a> FlexMap<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn key(&self, i: usize) -> Result<&'a [u8], FlexError> {
        let slot = self.keys + i * self.key_width;
        let start = follow(self.data, slot, self.key_width)?;
        let rest = self
            .data
            .get(start..)
            .ok_or(FlexError::OutOfBounds(start))?;
        let len = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(FlexError::OutOfBounds(start))?;
        Ok(&rest[..len])
    }

    fn value(&self, i: usize) -> Result<FlexRef<'a>, FlexError> {
        let types = self.values + self.len * self.width;
        let packed = *self
            .data
            .get(types + i)
            .ok_or(FlexError::OutOfBounds(types + i))?;
        Ok(FlexRef::new(
            self.data,
            self.values + i * self.width,
            self.width,
            packed,
        ))
    }

    /// The value under `key`, if present.
    pub fn get(&self, key: &str) -> Result<Option<FlexRef<'a>>, FlexError> {
        for i in 0..self.len {
            if self.key(i)? == key.as_bytes() {
                return self.value(i).map(Some);
            }
        }
        Ok(None)
    }

    /// All readable entries (key lossily decoded); unreadable ones are skipped.
    pub fn entries(&self) -> impl Iterator<Item = (String, FlexRef<'a>)> + '_ {
        (0..self.len).filter_map(move |i| {
            let key = self.key(i).ok()?;
            let value = self.value(i).ok()?;
            Some((String::from_utf8_lossy(key).into_owned(), value))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds `{"a": 7, "b": 1.5, "c": true, "s": <3 binary bytes as a string>}`
    /// by hand, with 1-byte widths, laid out as FlexBuffers does.
    pub(crate) fn sample_map() -> Vec<u8> {
        let mut buf = Vec::new();
        // Keys (NUL-terminated).
        let key_a = buf.len();
        buf.extend_from_slice(b"a\0");
        let key_b = buf.len();
        buf.extend_from_slice(b"b\0");
        let key_c = buf.len();
        buf.extend_from_slice(b"c\0");
        let key_s = buf.len();
        buf.extend_from_slice(b"s\0");
        // String "s": length byte then bytes then NUL.
        buf.push(3);
        let string_start = buf.len();
        buf.extend_from_slice(&[0xff, 0x00, 0x80, 0x00]);
        // Float 1.5 needs 4 bytes: make it an indirect float.
        while buf.len() % 4 != 0 {
            buf.push(0);
        }
        let float_pos = buf.len();
        buf.extend_from_slice(&1.5f32.to_le_bytes());
        // Keys vector: length, then offsets.
        buf.push(4);
        let keys_start = buf.len();
        for (i, key) in [key_a, key_b, key_c, key_s].iter().enumerate() {
            buf.push((keys_start + i - key) as u8);
        }
        // Map header: keys offset, keys width, length; then values and types.
        let keys_slot = buf.len();
        buf.push((keys_slot - keys_start) as u8);
        buf.push(1);
        buf.push(4);
        let values = buf.len();
        buf.push(7); // a: int
        buf.push((values + 1 - float_pos) as u8); // b: indirect float
        buf.push(1); // c: bool
        buf.push((values + 3 - string_start) as u8); // s: string
        buf.push(1 << 2); // int, width 1
        buf.push((8 << 2) | 2); // indirect float, child width 4
        buf.push(26 << 2); // bool
        buf.push(5 << 2); // string, width 1
        // Root: offset to map, packed type, root width.
        let root_pos = buf.len();
        buf.push((root_pos - values) as u8);
        buf.push(9 << 2);
        buf.push(1);
        buf
    }

    #[test]
    fn reads_map_values_including_binary_strings() {
        let buf = sample_map();
        let map = root(&buf).unwrap().as_map().unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map.get("a").unwrap().unwrap().as_i64().unwrap(), 7);
        assert_eq!(map.get("b").unwrap().unwrap().as_f64().unwrap(), 1.5);
        assert!(map.get("c").unwrap().unwrap().as_bool().unwrap());
        assert_eq!(
            map.get("s").unwrap().unwrap().as_bytes().unwrap(),
            &[0xff, 0x00, 0x80]
        );
        assert!(map.get("zz").unwrap().is_none());
        assert_eq!(
            root(&buf).unwrap().render(),
            r#"{"a": 7, "b": 1.5, "c": true, "s": <3 bytes>}"#
        );
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_not_a_panic() {
        let buf = sample_map();
        for cut in 0..buf.len() {
            let _ = root(&buf[cut..]).map(|r| r.render());
            let _ = root(&buf[..cut]).map(|r| r.render());
        }
        for i in 0..buf.len() {
            for value in [0u8, 1, 0x7f, 0xff] {
                let mut bad = buf.clone();
                bad[i] = value;
                let _ = root(&bad).map(|r| r.render());
            }
        }
    }

    #[test]
    fn rejects_bad_root_width() {
        assert_eq!(root(&[0, 0, 3]).unwrap_err(), FlexError::BadWidth(3));
        assert_eq!(root(&[1]).unwrap_err(), FlexError::TooShort(1));
    }
}
