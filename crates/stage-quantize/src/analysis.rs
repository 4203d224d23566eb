//! A converted model as the conversion script describes it (operators,
//! tensors, dtypes, which tensors are constant) and the views the report
//! and the mode check need: op counts, tensors left in float, weight types.

use std::collections::BTreeMap;

pub use artifact_schemas::quantize::{FloatTensor, TensorSummary, WeightStorage};
use serde::{Deserialize, Serialize};

/// The custom op the SSD exporters end their graphs in.
pub const DETECTION_POSTPROCESS: &str = "TFLite_Detection_PostProcess";

/// Ops whose second input is a weight tensor.
const WEIGHTED_OPS: [&str; 4] = [
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "TRANSPOSE_CONV",
];

/// The first subgraph of a .tflite model, flattened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAnalysis {
    pub subgraphs: u32,
    pub operators: Vec<Operator>,
    pub tensors: Vec<Tensor>,
    pub inputs: Vec<i64>,
    pub outputs: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    pub index: usize,
    /// Builtin op name (`CONV_2D`) or `CUSTOM`.
    pub opcode: String,
    /// The custom op's name when `opcode` is `CUSTOM`.
    #[serde(default)]
    pub custom_code: Option<String>,
    /// Tensor indices; -1 marks an omitted optional input.
    pub inputs: Vec<i64>,
    pub outputs: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tensor {
    pub index: usize,
    pub name: String,
    /// Lower-case TFLite type: `float32`, `float16`, `int8`, `uint8`, `int32`...
    pub dtype: String,
    pub shape: Vec<i64>,
    /// Bytes of constant data (weights); 0 for activations.
    pub constant_bytes: u64,
    /// Carries quantization parameters (scale / zero point).
    pub quantized: bool,
    /// How many scales it carries: 1 per tensor, one per channel along
    /// `quantized_dimension` otherwise (0 when not quantized).
    #[serde(default)]
    pub scales: usize,
    #[serde(default)]
    pub quantized_dimension: usize,
}

impl Tensor {
    pub fn is_constant(&self) -> bool {
        self.constant_bytes > 0
    }

    pub fn is_float(&self) -> bool {
        is_float_dtype(&self.dtype)
    }
}

pub fn is_float_dtype(dtype: &str) -> bool {
    matches!(dtype, "float32" | "float16" | "float64")
}

impl Operator {
    /// `CONV_2D`, or the custom op's own name.
    pub fn name(&self) -> &str {
        match (&self.custom_code, self.opcode.as_str()) {
            (Some(code), "CUSTOM") if !code.is_empty() => code,
            _ => &self.opcode,
        }
    }

    /// `CONV_2D#3`: unique within the model, for messages.
    pub fn label(&self) -> String {
        format!("{}#{}", self.name(), self.index)
    }

    pub fn is_postprocess(&self) -> bool {
        self.name() == DETECTION_POSTPROCESS
    }

    /// Ops that only move values between float and integer.
    pub fn is_conversion(&self) -> bool {
        matches!(self.opcode.as_str(), "QUANTIZE" | "DEQUANTIZE")
    }
}

impl ModelAnalysis {
    pub fn tensor(&self, index: i64) -> Option<&Tensor> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.tensors.get(i))
    }

    fn summaries(&self, indices: &[i64]) -> Vec<TensorSummary> {
        indices
            .iter()
            .filter_map(|&i| self.tensor(i))
            .map(|t| TensorSummary {
                name: t.name.clone(),
                dtype: t.dtype.clone(),
                shape: t.shape.clone(),
            })
            .collect()
    }

    pub fn input_summaries(&self) -> Vec<TensorSummary> {
        self.summaries(&self.inputs)
    }

    pub fn output_summaries(&self) -> Vec<TensorSummary> {
        self.summaries(&self.outputs)
    }

    /// How often each op occurs (custom ops by their own name).
    pub fn op_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for op in &self.operators {
            *counts.entry(op.name().to_owned()).or_insert(0) += 1;
        }
        counts
    }

    pub fn has_postprocess(&self) -> bool {
        self.operators.iter().any(Operator::is_postprocess)
    }

    fn producer_of(&self, tensor: usize) -> Option<&Operator> {
        self.operators
            .iter()
            .find(|op| op.outputs.contains(&(tensor as i64)))
    }

    /// Every float tensor with the op that writes it and the ops that read it.
    pub fn float_tensors(&self) -> Vec<FloatTensor> {
        let mut consumers: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let mut producers: BTreeMap<usize, String> = BTreeMap::new();
        for op in &self.operators {
            for &i in &op.inputs {
                if let Ok(i) = usize::try_from(i) {
                    consumers.entry(i).or_default().push(op.label());
                }
            }
            for &o in &op.outputs {
                if let Ok(o) = usize::try_from(o) {
                    producers.insert(o, op.label());
                }
            }
        }
        self.tensors
            .iter()
            .filter(|t| t.is_float())
            .map(|t| FloatTensor {
                name: t.name.clone(),
                dtype: t.dtype.clone(),
                constant: t.is_constant(),
                produced_by: producers.get(&t.index).cloned(),
                consumed_by: consumers.get(&t.index).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Constant bytes per dtype: where the model's size goes.
    pub fn constant_bytes_by_dtype(&self) -> BTreeMap<String, u64> {
        let mut bytes = BTreeMap::new();
        for t in self.tensors.iter().filter(|t| t.is_constant()) {
            *bytes.entry(t.dtype.clone()).or_insert(0) += t.constant_bytes;
        }
        bytes
    }

    /// The weight of every conv / fully-connected op and how it is stored,
    /// looking through a DEQUANTIZE of a constant (float16 weights).
    pub fn weights(&self) -> Vec<WeightStorage> {
        self.operators
            .iter()
            .filter(|op| WEIGHTED_OPS.contains(&op.opcode.as_str()))
            .filter_map(|op| {
                let weight = self.tensor(*op.inputs.get(1)?)?;
                let stored = if weight.is_constant() {
                    weight
                } else {
                    let producer = self.producer_of(weight.index)?;
                    if producer.opcode != "DEQUANTIZE" {
                        return None;
                    }
                    self.tensor(*producer.inputs.first()?)
                        .filter(|t| t.is_constant())?
                };
                Some(WeightStorage {
                    op: op.label(),
                    tensor: weight.name.clone(),
                    dtype: stored.dtype.clone(),
                    scales: stored.scales,
                })
            })
            .collect()
    }

    /// Ops that compute on float activations, other than the detection
    /// post-process and the QUANTIZE/DEQUANTIZE ops at its boundary.
    pub fn float_compute_ops(&self) -> Vec<&Operator> {
        self.operators
            .iter()
            .filter(|op| !op.is_postprocess() && !op.is_conversion())
            .filter(|op| {
                op.inputs
                    .iter()
                    .chain(&op.outputs)
                    .filter_map(|&i| self.tensor(i))
                    .any(|t| t.is_float() && !t.is_constant())
            })
            .collect()
    }

    /// Activations (non-constant tensors) stored as 8-bit integers.
    pub fn integer_activations(&self) -> Vec<&Tensor> {
        self.tensors
            .iter()
            .filter(|t| !t.is_constant() && matches!(t.dtype.as_str(), "int8" | "uint8"))
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One op of a test model: `(opcode, custom code, inputs, outputs)`.
    pub(crate) type OpSpec<'a> = (&'a str, Option<&'a str>, &'a [i64], &'a [i64]);

    /// A small model built op by op over tensors `(name, dtype, constant_bytes)`.
    pub(crate) fn model(
        tensors: &[(&str, &str, u64)],
        ops: &[OpSpec<'_>],
        inputs: &[i64],
        outputs: &[i64],
    ) -> ModelAnalysis {
        ModelAnalysis {
            subgraphs: 1,
            tensors: tensors
                .iter()
                .enumerate()
                .map(|(index, (name, dtype, bytes))| Tensor {
                    index,
                    name: (*name).to_owned(),
                    dtype: (*dtype).to_owned(),
                    shape: vec![1],
                    constant_bytes: *bytes,
                    quantized: matches!(*dtype, "int8" | "uint8"),
                    scales: usize::from(matches!(*dtype, "int8" | "uint8")),
                    quantized_dimension: 0,
                })
                .collect(),
            operators: ops
                .iter()
                .enumerate()
                .map(|(index, (opcode, custom, ins, outs))| Operator {
                    index,
                    opcode: (*opcode).to_owned(),
                    custom_code: custom.map(str::to_owned),
                    inputs: ins.to_vec(),
                    outputs: outs.to_vec(),
                })
                .collect(),
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
        }
    }

    /// A float16 model: DEQUANTIZE of a float16 weight feeding a conv.
    pub(crate) fn float16_model() -> ModelAnalysis {
        model(
            &[
                ("image", "float32", 0),
                ("w16", "float16", 864),
                ("w", "float32", 0),
                ("b", "float32", 64),
                ("y", "float32", 0),
            ],
            &[
                ("DEQUANTIZE", None, &[1], &[2]),
                ("CONV_2D", None, &[0, 2, 3], &[4]),
            ],
            &[0],
            &[4],
        )
    }

    #[test]
    fn weights_look_through_dequantize() {
        let weights = float16_model().weights();
        assert_eq!(
            weights,
            [WeightStorage {
                op: "CONV_2D#1".into(),
                tensor: "w".into(),
                dtype: "float16".into(),
                scales: 0,
            }]
        );
    }

    #[test]
    fn float_tensors_name_their_producer_and_consumers() {
        let floats = float16_model().float_tensors();
        let names: Vec<&str> = floats.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["image", "w16", "w", "b", "y"]);
        let w = &floats[2];
        assert_eq!(w.produced_by.as_deref(), Some("DEQUANTIZE#0"));
        assert_eq!(w.consumed_by, ["CONV_2D#1"]);
        assert!(floats[1].constant);
        assert_eq!(floats[1].dtype, "float16");
    }

    #[test]
    fn custom_ops_count_under_their_own_name() {
        let m = model(
            &[
                ("a", "float32", 0),
                ("b", "float32", 0),
                ("anchors", "float32", 16),
                ("out", "float32", 0),
            ],
            &[
                ("LOGISTIC", None, &[0], &[1]),
                ("CUSTOM", Some(DETECTION_POSTPROCESS), &[0, 1, 2], &[3]),
            ],
            &[0],
            &[3],
        );
        let counts = m.op_counts();
        assert_eq!(counts["LOGISTIC"], 1);
        assert_eq!(counts[DETECTION_POSTPROCESS], 1);
        assert!(m.has_postprocess());
        let float_ops: Vec<String> = m.float_compute_ops().iter().map(|op| op.label()).collect();
        assert_eq!(float_ops, ["LOGISTIC#0"]);
        assert_eq!(m.constant_bytes_by_dtype()["float32"], 16);
    }

    #[test]
    fn parses_the_scripts_json() {
        let json = r#"{"subgraphs":1,"operators":[{"index":0,"opcode":"CONV_2D","custom_code":null,
            "inputs":[0,1,-1],"outputs":[2]}],"tensors":[
            {"index":0,"name":"in","dtype":"uint8","shape":[1,8,8,3],"constant_bytes":0,"quantized":true},
            {"index":1,"name":"w","dtype":"uint8","shape":[4,3,3,3],"constant_bytes":108,"quantized":true},
            {"index":2,"name":"out","dtype":"uint8","shape":[1,8,8,4],"constant_bytes":0,"quantized":true}],
            "inputs":[0],"outputs":[2]}"#;
        let m: ModelAnalysis = serde_json::from_str(json).unwrap();
        assert_eq!(m.input_summaries()[0].shape, [1, 8, 8, 3]);
        assert_eq!(m.weights()[0].dtype, "uint8");
        assert!(m.float_tensors().is_empty());
        assert_eq!(m.integer_activations().len(), 2);
    }
}
