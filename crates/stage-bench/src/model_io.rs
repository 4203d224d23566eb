//! What the runtime needs to know about a model's inputs and outputs, read
//! from the `.tflite` flatbuffer with the `tflite` crate: the input's shape,
//! dtype and quantization, each output's element type and size, and — for
//! SSD models ending in `TFLite_Detection_PostProcess`, whose outputs the
//! runtime reports with empty shapes — the sizes that follow from the op's
//! `max_detections` option, never guessed.

use std::path::Path;

use tflite::{DetectionPostProcessOptions, TensorType};

/// Custom code of the SSD post-process op.
pub const DETECTION_POSTPROCESS: &str = "TFLite_Detection_PostProcess";
/// Custom code of the op the Edge TPU compiler emits.
pub const EDGETPU_CUSTOM_OP: &str = "edgetpu-custom-op";

/// The model's single image input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    pub name: String,
    /// `[1, height, width, 3]`.
    pub shape: Vec<i32>,
    pub kind: InputKind,
}

/// Element type of the input and, for integer inputs, its quantization.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputKind {
    Float32,
    UInt8 { scale: f32, zero_point: i64 },
    Int8 { scale: f32, zero_point: i64 },
}

impl InputKind {
    pub fn dtype_name(&self) -> &'static str {
        match self {
            InputKind::Float32 => "float32",
            InputKind::UInt8 { .. } => "uint8",
            InputKind::Int8 { .. } => "int8",
        }
    }
}

/// Which post-process output a tensor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectionRole {
    Boxes,
    Classes,
    Scores,
    Count,
}

/// One output in the order the runtime's default signature lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub name: String,
    pub dtype: TensorType,
    /// The buffer shape to allocate (from the post-process op for its outputs).
    pub shape: Vec<i32>,
    /// (scale, zero point) of a quantized output.
    pub quantization: Option<(f32, i64)>,
    pub role: Option<DetectionRole>,
}

/// Inputs, outputs and the model facts the bench stage reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelIo {
    pub input: InputSpec,
    pub outputs: Vec<OutputSpec>,
    pub postprocess: Option<DetectionPostProcessOptions>,
    /// Contains `edgetpu-custom-op`: needs the Edge TPU runtime.
    pub edgetpu_compiled: bool,
    pub size_bytes: u64,
}

/// Why a model cannot be benchmarked.
#[derive(Debug, thiserror::Error)]
pub enum ModelIoError {
    #[error(transparent)]
    Read(#[from] tflite::TfliteError),
    #[error("{path}: {detail}")]
    Unsupported { path: String, detail: String },
}

impl ModelIo {
    pub fn read(path: &Path) -> Result<ModelIo, ModelIoError> {
        let model = tflite::Model::from_path(path)?;
        let unsupported = |detail: String| ModelIoError::Unsupported {
            path: path.display().to_string(),
            detail,
        };
        let size_bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let Some(graph) = model.main_subgraph() else {
            return Err(unsupported("the model has no subgraph".into()));
        };
        // The runtime's default signature: the first signature def when the
        // model has one, else the main subgraph's inputs and outputs.
        let (input_indices, output_indices): (Vec<i32>, Vec<i32>) = match model.signatures.first() {
            Some(sig) if sig.subgraph == 0 => (
                sig.inputs.iter().map(|(_, t)| *t as i32).collect(),
                sig.outputs.iter().map(|(_, t)| *t as i32).collect(),
            ),
            _ => (graph.inputs.clone(), graph.outputs.clone()),
        };
        let [input_index] = input_indices.as_slice() else {
            return Err(unsupported(format!(
                "{} inputs; the bench stage runs single-image-input models",
                input_indices.len()
            )));
        };
        let Some(input) = graph.tensor(*input_index) else {
            return Err(unsupported(format!(
                "input tensor {input_index} does not exist"
            )));
        };
        if input.shape.len() != 4 || input.shape[0] != 1 || input.shape[3] != 3 {
            return Err(unsupported(format!(
                "input `{}` has shape {:?}; expected [1, height, width, 3]",
                input.name, input.shape
            )));
        }
        let quant = input.quantization.as_ref().and_then(|q| q.per_tensor());
        let kind = match (input.dtype, quant) {
            (TensorType::FLOAT32, _) => InputKind::Float32,
            (TensorType::UINT8, Some((scale, zero_point))) => {
                InputKind::UInt8 { scale, zero_point }
            }
            (TensorType::INT8, Some((scale, zero_point))) => InputKind::Int8 { scale, zero_point },
            (dtype, _) => {
                return Err(unsupported(format!(
                    "input `{}` is {dtype} without a per-tensor scale; expected float32, or uint8/int8 with quantization",
                    input.name
                )));
            }
        };
        let input = InputSpec {
            name: input.name.clone(),
            shape: input.shape.clone(),
            kind,
        };

        let mut postprocess = None;
        let mut roles: Vec<(usize, DetectionRole, Vec<i64>)> = Vec::new();
        for op in &graph.operators {
            if let Some(options) = op.detection_postprocess_options()? {
                let shapes = options.output_shapes();
                let all = [
                    DetectionRole::Boxes,
                    DetectionRole::Classes,
                    DetectionRole::Scores,
                    DetectionRole::Count,
                ];
                for ((tensor, role), shape) in op.output_indices().zip(all).zip(shapes) {
                    roles.push((tensor, role, shape));
                }
                postprocess = Some(options);
            }
        }
        let edgetpu_compiled = model
            .operators()
            .any(|(_, op)| op.is_custom(EDGETPU_CUSTOM_OP));

        let mut outputs = Vec::new();
        for index in output_indices {
            let Some(tensor) = graph.tensor(index) else {
                return Err(unsupported(format!("output tensor {index} does not exist")));
            };
            let from_op = roles.iter().find(|(t, _, _)| *t as i32 == index);
            let shape = match from_op {
                Some((_, _, shape)) => shape
                    .iter()
                    .map(|&d| i32::try_from(d))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        unsupported(format!(
                            "{DETECTION_POSTPROCESS} output size {shape:?} is too large"
                        ))
                    })?,
                None => tensor.shape.clone(),
            };
            outputs.push(OutputSpec {
                name: tensor.name.clone(),
                dtype: tensor.dtype,
                shape,
                quantization: tensor.quantization.as_ref().and_then(|q| q.per_tensor()),
                role: from_op.map(|(_, role, _)| *role),
            });
        }
        Ok(ModelIo {
            input,
            outputs,
            postprocess,
            edgetpu_compiled,
            size_bytes,
        })
    }

    /// Input height and width.
    pub fn input_size(&self) -> (usize, usize) {
        (
            self.input.shape[1].max(1) as usize,
            self.input.shape[2].max(1) as usize,
        )
    }

    /// The four post-process outputs' positions, when the model has them.
    pub fn detection_outputs(&self) -> Option<[usize; 4]> {
        let find = |role| self.outputs.iter().position(|o| o.role == Some(role));
        Some([
            find(DetectionRole::Boxes)?,
            find(DetectionRole::Classes)?,
            find(DetectionRole::Scores)?,
            find(DetectionRole::Count)?,
        ])
    }
}
