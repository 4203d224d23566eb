//! The model as owned data: subgraphs, operators, tensors, buffers.
//!
//! [`Model::from_bytes`] walks the whole flatbuffer once through the
//! generated, bounds-checked accessors and copies what edgepipe needs, so a
//! malformed file fails here with its location instead of later, and callers
//! get plain Rust values.

use std::path::Path;

use planus::ReadAsRoot;
use serde::Serialize;

use crate::error::TfliteError;
use crate::generated::enum_names::BUILTIN_OPERATOR_NAMES;
use crate::generated::tflite_schema::tflite as fb;
use crate::options::OpOptions;
use crate::tensor::{Quantization, Tensor, TensorType};

/// The builtin code of custom operators.
pub const CUSTOM_BUILTIN_CODE: i32 = 32;
/// `deprecated_builtin_code` value meaning "look at `builtin_code`".
const PLACEHOLDER_FOR_GREATER_OP_CODES: i32 = 127;
/// Refuse files above this size (flatbuffers address 2 GiB; larger models
/// keep buffers after the flatbuffer, which we read too, up to this cap).
const MAX_MODEL_BYTES: u64 = 8 << 30;

/// A TensorFlow Lite model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Model {
    /// Schema version (3 for current converters).
    pub version: u32,
    pub description: Option<String>,
    pub operator_codes: Vec<OperatorCode>,
    pub subgraphs: Vec<Subgraph>,
    /// Bytes stored per buffer (index 0 is the empty sentinel).
    pub buffer_sizes: Vec<usize>,
    pub metadata: Vec<Metadata>,
    pub signatures: Vec<Signature>,
    #[serde(skip)]
    buffers: Vec<Vec<u8>>,
}

/// An entry of the model's operator code table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperatorCode {
    /// `max(builtin_code, deprecated_builtin_code)`, as TFLite resolves it.
    pub builtin_code: i32,
    pub custom_code: Option<String>,
    pub version: i32,
}

impl OperatorCode {
    /// The op name as TFLite and the Edge TPU compiler print it
    /// (`CONV_2D`, `CUSTOM`, ...).
    pub fn name(&self) -> String {
        builtin_operator_name(self.builtin_code)
    }

    pub fn is_custom(&self) -> bool {
        self.builtin_code == CUSTOM_BUILTIN_CODE
    }
}

/// TFLite's name of a builtin operator code, or `UNKNOWN_OP(<code>)`.
pub fn builtin_operator_name(code: i32) -> String {
    BUILTIN_OPERATOR_NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| (*name).to_owned())
        .unwrap_or_else(|| format!("UNKNOWN_OP({code})"))
}

/// One operator of a subgraph, with its op code resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operator {
    /// Position in its subgraph's execution order.
    pub index: usize,
    /// TFLite's op name (`CONV_2D`, `CUSTOM`).
    pub op: String,
    pub builtin_code: i32,
    /// The custom op's name (`TFLite_Detection_PostProcess`, `edgetpu-custom-op`).
    pub custom_code: Option<String>,
    /// Op version from the operator code table.
    pub version: i32,
    /// Tensor indices; -1 marks an omitted optional input.
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    /// The builtin options edgepipe reads.
    pub options: OpOptions,
    /// Raw custom options (a FlexBuffer for the custom ops edgepipe knows).
    #[serde(skip)]
    pub custom_options: Vec<u8>,
}

impl Operator {
    /// `CUSTOM` ops print with their custom code in edgepipe's reports.
    pub fn display_name(&self) -> String {
        match &self.custom_code {
            Some(code) if self.builtin_code == CUSTOM_BUILTIN_CODE => format!("CUSTOM ({code})"),
            _ => self.op.clone(),
        }
    }

    pub fn is_custom(&self, name: &str) -> bool {
        self.builtin_code == CUSTOM_BUILTIN_CODE && self.custom_code.as_deref() == Some(name)
    }

    /// Input tensor indices that are present (skips -1).
    pub fn input_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.inputs.iter().filter_map(|i| usize::try_from(*i).ok())
    }

    pub fn output_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.outputs.iter().filter_map(|i| usize::try_from(*i).ok())
    }
}

/// A subgraph: its tensors, operators and I/O.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subgraph {
    pub name: Option<String>,
    pub tensors: Vec<Tensor>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub operators: Vec<Operator>,
}

impl Subgraph {
    pub fn tensor(&self, index: i32) -> Option<&Tensor> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.tensors.get(i))
    }

    pub fn input_tensors(&self) -> Vec<&Tensor> {
        self.inputs.iter().filter_map(|i| self.tensor(*i)).collect()
    }

    pub fn output_tensors(&self) -> Vec<&Tensor> {
        self.outputs
            .iter()
            .filter_map(|i| self.tensor(*i))
            .collect()
    }

    /// The operator that writes `tensor`, if any.
    pub fn producer(&self, tensor: usize) -> Option<&Operator> {
        self.operators
            .iter()
            .find(|op| op.output_indices().any(|t| t == tensor))
    }
}

/// A named metadata buffer (`min_runtime_version`, `TFLITE_METADATA`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    pub name: String,
    pub buffer: u32,
}

/// A signature: named inputs/outputs mapped to tensors of a subgraph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    pub key: String,
    pub subgraph: u32,
    pub inputs: Vec<(String, u32)>,
    pub outputs: Vec<(String, u32)>,
}

impl Model {
    /// Reads a model from a file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Model, TfliteError> {
        let path = path.as_ref();
        let io = |source| TfliteError::Io {
            path: path.to_path_buf(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_MODEL_BYTES {
            return Err(TfliteError::NotTflite {
                reason: format!(
                    "{}: {len} bytes is larger than any model edgepipe reads",
                    path.display()
                ),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Model::from_bytes(&bytes).map_err(|e| e.in_file(path))
    }

    /// Reads a model from its bytes. Malformed input gives an error naming
    /// the table and field that failed, never a panic.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model, TfliteError> {
        if bytes.len() < 8 {
            return Err(TfliteError::NotTflite {
                reason: format!("the file is only {} bytes", bytes.len()),
            });
        }
        if &bytes[4..8] != b"TFL3" {
            let found = String::from_utf8_lossy(&bytes[4..8])
                .escape_debug()
                .to_string();
            return Err(TfliteError::NotTflite {
                reason: format!("file identifier is `{found}`"),
            });
        }
        let root =
            fb::ModelRef::read_as_root(bytes).map_err(|e| TfliteError::malformed("model", e))?;
        read_model(root, bytes)
    }

    /// The data of a buffer (empty for non-constant tensors).
    pub fn buffer(&self, index: u32) -> &[u8] {
        self.buffers
            .get(index as usize)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The constant data of a tensor, if stored in the model.
    pub fn tensor_data(&self, tensor: &Tensor) -> Option<&[u8]> {
        let data = self.buffer(tensor.buffer);
        if data.is_empty() { None } else { Some(data) }
    }

    /// The first subgraph (the one the interpreter runs).
    pub fn main_subgraph(&self) -> Option<&Subgraph> {
        self.subgraphs.first()
    }

    /// All operators of all subgraphs, with their subgraph index.
    pub fn operators(&self) -> impl Iterator<Item = (usize, &Operator)> {
        self.subgraphs
            .iter()
            .enumerate()
            .flat_map(|(s, g)| g.operators.iter().map(move |op| (s, op)))
    }

    /// The TFLite runtime version the converter recorded as required
    /// (metadata `min_runtime_version`), e.g. `1.14.0`.
    pub fn min_tflite_runtime_version(&self) -> Option<String> {
        let entry = self
            .metadata
            .iter()
            .find(|m| m.name == "min_runtime_version")?;
        let data = self.buffer(entry.buffer);
        let text = data.split(|b| *b == 0).next().unwrap_or_default();
        std::str::from_utf8(text).ok().map(str::to_owned)
    }
}

fn read_model(root: fb::ModelRef<'_>, file: &[u8]) -> Result<Model, TfliteError> {
    fn at(what: &'static str) -> impl Fn(planus::Error) -> TfliteError {
        move |e| TfliteError::malformed(what, e)
    }
    let version = root.version().map_err(at("model.version"))?;
    let description = root
        .description()
        .map_err(at("model.description"))?
        .map(str::to_owned);

    let mut operator_codes = Vec::new();
    if let Some(codes) = root.operator_codes().map_err(at("model.operator_codes"))? {
        for (i, code) in codes.iter().enumerate() {
            let location = format!("operator_codes[{i}]");
            let code = code.map_err(|e| TfliteError::malformed(&location, e))?;
            let err = |e| TfliteError::malformed(&location, e);
            let deprecated = i32::from(code.deprecated_builtin_code().map_err(err)?);
            let builtin = code.builtin_code().map_err(err)?;
            // Old models only set the deprecated byte; newer ones set 127 there.
            let builtin_code = if deprecated == PLACEHOLDER_FOR_GREATER_OP_CODES {
                builtin
            } else {
                builtin.max(deprecated)
            };
            operator_codes.push(OperatorCode {
                builtin_code,
                custom_code: code.custom_code().map_err(err)?.map(str::to_owned),
                version: code.version().map_err(err)?,
            });
        }
    }

    let mut buffers = Vec::new();
    if let Some(list) = root.buffers().map_err(at("model.buffers"))? {
        for (i, buffer) in list.iter().enumerate() {
            let location = format!("buffers[{i}]");
            let buffer = buffer.map_err(|e| TfliteError::malformed(&location, e))?;
            let err = |e| TfliteError::malformed(&location, e);
            let data = buffer.data().map_err(err)?.unwrap_or_default();
            let offset = buffer.offset().map_err(err)?;
            let size = buffer.size().map_err(err)?;
            // Offset 1 is the converter's "no data" marker for large models.
            let bytes = if data.is_empty() && offset > 1 && size > 0 {
                let start = usize::try_from(offset)
                    .map_err(|_| TfliteError::malformed(&location, "offset too large"))?;
                let len = usize::try_from(size)
                    .map_err(|_| TfliteError::malformed(&location, "size too large"))?;
                let end = start
                    .checked_add(len)
                    .ok_or_else(|| TfliteError::malformed(&location, "size overflows"))?;
                file.get(start..end)
                    .ok_or_else(|| {
                        TfliteError::malformed(
                            &location,
                            format!("data at bytes {start}..{end} lies past the end of the file ({} bytes)", file.len()),
                        )
                    })?
                    .to_vec()
            } else {
                data.to_vec()
            };
            buffers.push(bytes);
        }
    }

    let mut subgraphs = Vec::new();
    if let Some(list) = root.subgraphs().map_err(at("model.subgraphs"))? {
        for (s, subgraph) in list.iter().enumerate() {
            let subgraph =
                subgraph.map_err(|e| TfliteError::malformed(format!("subgraphs[{s}]"), e))?;
            subgraphs.push(read_subgraph(s, subgraph, &operator_codes, &buffers, file)?);
        }
    }

    let mut metadata = Vec::new();
    if let Some(list) = root.metadata().map_err(at("model.metadata"))? {
        for (i, entry) in list.iter().enumerate() {
            let location = format!("metadata[{i}]");
            let entry = entry.map_err(|e| TfliteError::malformed(&location, e))?;
            let err = |e| TfliteError::malformed(&location, e);
            metadata.push(Metadata {
                name: entry.name().map_err(err)?.unwrap_or_default().to_owned(),
                buffer: entry.buffer().map_err(err)?,
            });
        }
    }

    let mut signatures = Vec::new();
    if let Some(list) = root.signature_defs().map_err(at("model.signature_defs"))? {
        for (i, def) in list.iter().enumerate() {
            let location = format!("signature_defs[{i}]");
            let def = def.map_err(|e| TfliteError::malformed(&location, e))?;
            let err = |e| TfliteError::malformed(&location, e);
            let maps = |list: Option<planus::Vector<'_, planus::Result<fb::TensorMapRef<'_>>>>| {
                let mut out = Vec::new();
                for map in list.iter().flat_map(|l| l.iter()) {
                    let map = map.map_err(err)?;
                    out.push((
                        map.name().map_err(err)?.unwrap_or_default().to_owned(),
                        map.tensor_index().map_err(err)?,
                    ));
                }
                Ok::<_, TfliteError>(out)
            };
            signatures.push(Signature {
                key: def
                    .signature_key()
                    .map_err(err)?
                    .unwrap_or_default()
                    .to_owned(),
                subgraph: def.subgraph_index().map_err(err)?,
                inputs: maps(def.inputs().map_err(err)?)?,
                outputs: maps(def.outputs().map_err(err)?)?,
            });
        }
    }

    Ok(Model {
        version,
        description,
        buffer_sizes: buffers.iter().map(Vec::len).collect(),
        operator_codes,
        subgraphs,
        metadata,
        signatures,
        buffers,
    })
}

fn read_subgraph(
    s: usize,
    subgraph: fb::SubGraphRef<'_>,
    codes: &[OperatorCode],
    buffers: &[Vec<u8>],
    file: &[u8],
) -> Result<Subgraph, TfliteError> {
    let location = format!("subgraphs[{s}]");
    let err = |e| TfliteError::malformed(&location, e);
    let name = subgraph.name().map_err(err)?.map(str::to_owned);
    let inputs = ints(subgraph.inputs().map_err(err)?);
    let outputs = ints(subgraph.outputs().map_err(err)?);

    let mut tensors = Vec::new();
    if let Some(list) = subgraph.tensors().map_err(err)? {
        for (t, tensor) in list.iter().enumerate() {
            let location = format!("subgraphs[{s}].tensors[{t}]");
            let tensor = tensor.map_err(|e| TfliteError::malformed(&location, e))?;
            tensors.push(
                read_tensor(t, tensor, buffers)
                    .map_err(|e| TfliteError::malformed(&location, e))?,
            );
        }
    }
    for (what, list) in [("inputs", &inputs), ("outputs", &outputs)] {
        if let Some(bad) = list
            .iter()
            .find(|i| usize::try_from(**i).map_or(true, |i| i >= tensors.len()))
        {
            return Err(TfliteError::malformed(
                format!("subgraphs[{s}].{what}"),
                format!(
                    "tensor index {bad} but the subgraph has {} tensors",
                    tensors.len()
                ),
            ));
        }
    }

    let mut operators = Vec::new();
    if let Some(list) = subgraph.operators().map_err(err)? {
        for (o, op) in list.iter().enumerate() {
            let location = format!("subgraphs[{s}].operators[{o}]");
            let op = op.map_err(|e| TfliteError::malformed(&location, e))?;
            operators.push(read_operator(o, op, codes, tensors.len(), file, &location)?);
        }
    }
    Ok(Subgraph {
        name,
        tensors,
        inputs,
        outputs,
        operators,
    })
}

fn ints(list: Option<planus::Vector<'_, i32>>) -> Vec<i32> {
    list.map(|l| l.iter().collect()).unwrap_or_default()
}

fn read_tensor(
    index: usize,
    tensor: fb::TensorRef<'_>,
    buffers: &[Vec<u8>],
) -> Result<Tensor, planus::Error> {
    let buffer = tensor.buffer()?;
    let constant_bytes = buffers.get(buffer as usize).map_or(0, Vec::len);
    let quantization = match tensor.quantization()? {
        Some(q) => {
            let floats = |v: Option<planus::Vector<'_, f32>>| {
                v.map(|v| v.iter().collect::<Vec<f32>>())
                    .unwrap_or_default()
            };
            let scale = floats(q.scale()?);
            let zero_point = q
                .zero_point()?
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            let min = floats(q.min()?);
            let max = floats(q.max()?);
            if scale.is_empty() && min.is_empty() {
                None
            } else {
                Some(Quantization {
                    scale,
                    zero_point,
                    quantized_dimension: q.quantized_dimension()?,
                    min,
                    max,
                })
            }
        }
        None => None,
    };
    Ok(Tensor {
        index,
        name: tensor.name()?.unwrap_or_default().to_owned(),
        dtype: TensorType(tensor.type_()?),
        shape: ints(tensor.shape()?),
        shape_signature: tensor.shape_signature()?.map(|v| v.iter().collect()),
        buffer,
        is_constant: constant_bytes > 0,
        constant_bytes,
        quantization,
        is_variable: tensor.is_variable()?,
        is_sparse: tensor.sparsity()?.is_some(),
    })
}

fn read_operator(
    index: usize,
    op: fb::OperatorRef<'_>,
    codes: &[OperatorCode],
    tensor_count: usize,
    file: &[u8],
    location: &str,
) -> Result<Operator, TfliteError> {
    let err = |e| TfliteError::malformed(location, e);
    let opcode_index = op.opcode_index().map_err(err)?;
    let code = codes.get(opcode_index as usize).ok_or_else(|| {
        TfliteError::malformed(
            location,
            format!(
                "opcode_index {opcode_index} but the model has {} operator codes",
                codes.len()
            ),
        )
    })?;
    let inputs = ints(op.inputs().map_err(err)?);
    let outputs = ints(op.outputs().map_err(err)?);
    for (what, list) in [("inputs", &inputs), ("outputs", &outputs)] {
        if let Some(bad) = list
            .iter()
            .find(|i| **i < -1 || usize::try_from(**i).is_ok_and(|i| i >= tensor_count))
        {
            return Err(TfliteError::malformed(
                format!("{location}.{what}"),
                format!("tensor index {bad} but the subgraph has {tensor_count} tensors"),
            ));
        }
    }
    let mut custom_options = op
        .custom_options()
        .map_err(err)?
        .unwrap_or_default()
        .to_vec();
    if custom_options.is_empty() {
        let offset = op.large_custom_options_offset().map_err(err)?;
        let size = op.large_custom_options_size().map_err(err)?;
        if offset > 1 && size > 0 {
            let range = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(size).ok())
                .and_then(|(start, len)| Some(start..start.checked_add(len)?));
            custom_options = range
                .and_then(|r| file.get(r))
                .ok_or_else(|| {
                    TfliteError::malformed(
                        location,
                        "large custom options lie past the end of the file",
                    )
                })?
                .to_vec();
        }
    }
    Ok(Operator {
        index,
        op: code.name(),
        builtin_code: code.builtin_code,
        custom_code: code.custom_code.clone(),
        version: code.version,
        inputs,
        outputs,
        options: OpOptions::read(op),
        custom_options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_names_follow_tflite() {
        assert_eq!(builtin_operator_name(3), "CONV_2D");
        assert_eq!(builtin_operator_name(4), "DEPTHWISE_CONV_2D");
        assert_eq!(builtin_operator_name(32), "CUSTOM");
        assert_eq!(builtin_operator_name(114), "QUANTIZE");
        assert_eq!(builtin_operator_name(6), "DEQUANTIZE");
        assert_eq!(builtin_operator_name(-5), "UNKNOWN_OP(-5)");
    }

    #[test]
    fn short_or_foreign_files_are_not_tflite() {
        let err = Model::from_bytes(b"abc").unwrap_err().to_string();
        assert!(err.contains("only 3 bytes"), "{err}");
        let err = Model::from_bytes(b"\x10\0\0\0DWN1\0\0\0\0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("identifier is `DWN1`"), "{err}");
    }
}
