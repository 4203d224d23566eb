//! Running a `.tflite` model on the CPU with LiteRT (`litert` crate over
//! `libLiteRt.so`): one compiled model, one input buffer and one buffer per
//! output, each sized from [`ModelIo`] (the runtime cannot size the SSD
//! post-process outputs itself; a too-small buffer corrupts memory).

use std::path::Path;
use std::time::Instant;

use litert::{
    CompilationOptions, CompiledModel, ElementType, Environment, Model, TensorBuffer, TensorShape,
};
use tflite::TensorType;

use crate::model_io::{ModelIo, OutputSpec};
use crate::preprocess::InputData;

/// Why the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("LiteRT: {context}: {source}")]
    LiteRt {
        context: String,
        source: litert::Error,
    },
    #[error("output `{name}` has element type {dtype}, which the bench stage does not read")]
    UnsupportedOutput { name: String, dtype: String },
    #[error("input data is {given} but the model's input is {expected}")]
    InputMismatch {
        given: &'static str,
        expected: &'static str,
    },
    #[error(transparent)]
    Signature(#[from] crate::signature::SignatureError),
    #[error(
        "LiteRT lists output tensor `{name}`, which the model's flatbuffer does not name as an output"
    )]
    UnknownOutput { name: String },
    #[error("no preprocessed inputs to run the model on")]
    NoInputs,
    #[error("input data has {given} values but the model's input holds {expected}")]
    InputSize { given: usize, expected: usize },
}

fn lite(context: &str) -> impl FnOnce(litert::Error) -> RuntimeError + '_ {
    move |source| RuntimeError::LiteRt {
        context: context.to_owned(),
        source,
    }
}

fn element_type(dtype: TensorType) -> Option<ElementType> {
    Some(match dtype {
        TensorType::FLOAT32 => ElementType::Float32,
        TensorType::UINT8 => ElementType::UInt8,
        TensorType::INT8 => ElementType::Int8,
        TensorType::INT32 => ElementType::Int32,
        TensorType::INT64 => ElementType::Int64,
        TensorType::INT16 => ElementType::Int16,
        _ => return None,
    })
}

/// A compiled model with its I/O buffers, ready to run.
pub struct LiteRtRunner {
    // Field order is drop order: buffers before the compiled model.
    input: TensorBuffer,
    /// Output buffers in the runtime's signature order.
    outputs: Vec<TensorBuffer>,
    /// Output specs in [`ModelIo`] order; `buffer_of[i]` is spec i's buffer.
    specs: Vec<OutputSpec>,
    buffer_of: Vec<usize>,
    compiled: CompiledModel,
    /// Milliseconds spent loading and compiling the model.
    pub init_ms: f64,
}

impl LiteRtRunner {
    /// Loads and compiles `path` for the CPU.
    pub fn load(path: &Path, io: &ModelIo) -> Result<Self, RuntimeError> {
        let start = Instant::now();
        let env = Environment::new().map_err(lite("creating the environment"))?;
        let input_type = match io.input.kind {
            crate::model_io::InputKind::Float32 => ElementType::Float32,
            crate::model_io::InputKind::UInt8 { .. } => ElementType::UInt8,
            crate::model_io::InputKind::Int8 { .. } => ElementType::Int8,
        };
        let input = TensorBuffer::managed_host(
            &env,
            &TensorShape {
                element_type: input_type,
                dims: io.input.shape.clone(),
            },
        )
        .map_err(lite("allocating the input buffer"))?;
        // Buffers go in the order LiteRT lists the outputs, matched by tensor name.
        let runtime_order = crate::signature::output_tensor_names(path)?;
        let mut buffer_of = vec![usize::MAX; io.outputs.len()];
        let mut ordered = Vec::with_capacity(runtime_order.len());
        for (position, name) in runtime_order.iter().enumerate() {
            let spec = io
                .outputs
                .iter()
                .enumerate()
                .find(|(i, o)| &o.name == name && buffer_of[*i] == usize::MAX)
                .map(|(i, _)| i)
                .ok_or_else(|| RuntimeError::UnknownOutput { name: name.clone() })?;
            buffer_of[spec] = position;
            ordered.push(&io.outputs[spec]);
        }
        if let Some(missing) = buffer_of.iter().position(|&b| b == usize::MAX) {
            return Err(RuntimeError::UnknownOutput {
                name: io.outputs[missing].name.clone(),
            });
        }
        let mut outputs = Vec::with_capacity(ordered.len());
        for spec in ordered {
            let element_type =
                element_type(spec.dtype).ok_or_else(|| RuntimeError::UnsupportedOutput {
                    name: spec.name.clone(),
                    dtype: spec.dtype.name(),
                })?;
            let shape = TensorShape {
                element_type,
                dims: spec.shape.clone(),
            };
            outputs.push(
                TensorBuffer::managed_host(&env, &shape)
                    .map_err(lite("allocating an output buffer"))?,
            );
        }
        let model = Model::from_file(path).map_err(lite("loading the model"))?;
        let options = CompilationOptions::new().map_err(lite("creating options"))?;
        let compiled =
            CompiledModel::new(env, model, &options).map_err(lite("compiling the model"))?;
        Ok(Self {
            input,
            outputs,
            specs: io.outputs.clone(),
            buffer_of,
            compiled,
            init_ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Copies one preprocessed image into the input buffer.
    pub fn set_input(&mut self, data: &InputData) -> Result<(), RuntimeError> {
        let expected = match self
            .input
            .shape()
            .map_err(lite("reading the input type"))?
            .element_type
        {
            ElementType::Float32 => "float32",
            ElementType::UInt8 => "uint8",
            ElementType::Int8 => "int8",
            _ => "another type",
        };
        match data {
            InputData::F32(values) => {
                copy_into::<f32>(&mut self.input, values, expected, "float32")
            }
            InputData::U8(values) => copy_into::<u8>(&mut self.input, values, expected, "uint8"),
            InputData::I8(values) => copy_into::<i8>(&mut self.input, values, expected, "int8"),
        }
    }

    /// One inference.
    pub fn invoke(&mut self) -> Result<(), RuntimeError> {
        self.compiled
            .run(std::slice::from_mut(&mut self.input), &mut self.outputs)
            .map_err(lite("running the model"))
    }

    pub fn output_count(&self) -> usize {
        self.specs.len()
    }

    /// Output `i` (in [`ModelIo`] order) as real numbers (dequantized when the output is quantized).
    pub fn output_f32(&self, i: usize) -> Result<Vec<f32>, RuntimeError> {
        let spec = &self.specs[i];
        let buffer = &self.outputs[self.buffer_of[i]];
        let (scale, zero_point) = spec.quantization.unwrap_or((1.0, 0));
        let deq = |q: f32| (q - zero_point as f32) * scale;
        Ok(match spec.dtype {
            TensorType::FLOAT32 => read_output(buffer, |v: f32| v)?,
            TensorType::UINT8 => read_output(buffer, |q: u8| deq(f32::from(q)))?,
            TensorType::INT8 => read_output(buffer, |q: i8| deq(f32::from(q)))?,
            TensorType::INT16 => read_output(buffer, |q: i16| deq(f32::from(q)))?,
            TensorType::INT32 => read_output(buffer, |q: i32| q as f32)?,
            TensorType::INT64 => read_output(buffer, |q: i64| q as f32)?,
            other => {
                return Err(RuntimeError::UnsupportedOutput {
                    name: spec.name.clone(),
                    dtype: other.name(),
                });
            }
        })
    }

    /// Output `i` as stored (integers widened to f64, no dequantization).
    pub fn output_raw(&self, i: usize) -> Result<Vec<f64>, RuntimeError> {
        let spec = &self.specs[i];
        let buffer = &self.outputs[self.buffer_of[i]];
        Ok(match spec.dtype {
            TensorType::FLOAT32 => read_output(buffer, |v: f32| f64::from(v))?,
            TensorType::UINT8 => read_output(buffer, |v: u8| f64::from(v))?,
            TensorType::INT8 => read_output(buffer, |v: i8| f64::from(v))?,
            _ => self.output_f32(i)?.into_iter().map(f64::from).collect(),
        })
    }
}

/// An output buffer's elements, each mapped by `convert`.
fn read_output<T: litert::TensorElement + Copy, U>(
    buffer: &TensorBuffer,
    convert: impl Fn(T) -> U,
) -> Result<Vec<U>, RuntimeError> {
    let guard = buffer
        .lock_for_read::<T>()
        .map_err(lite("reading an output"))?;
    Ok(guard.iter().map(|&v| convert(v)).collect())
}

fn copy_into<T: litert::TensorElement>(
    buffer: &mut TensorBuffer,
    values: &[T],
    expected: &'static str,
    given: &'static str,
) -> Result<(), RuntimeError> {
    if expected != given {
        return Err(RuntimeError::InputMismatch { given, expected });
    }
    let mut guard = buffer
        .lock_for_write::<T>()
        .map_err(lite("writing the input"))?;
    if guard.len() != values.len() {
        return Err(RuntimeError::InputSize {
            given: values.len(),
            expected: guard.len(),
        });
    }
    guard.copy_from_slice(values);
    Ok(())
}
