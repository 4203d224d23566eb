//! The `edgetpu` stage: predict, lint, compile when a compiler exists,
//! compare, gate, and write `edgetpu.json` plus `compiled/`.

use std::path::Path;

use artifact_schemas::edgetpu::{EdgeTpuReport, Summary};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use stage_api::{InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult};
use tflite::Model;

use crate::analyze::{self, Analysis, PredictOptions};
use crate::compiler::{self, Compilation, CompileFlags, CompilerSource};
use crate::compiler_log::TableRow;
use crate::lint;
use crate::report::table_rows;
use crate::versions::Target;

/// Params of the `edgetpu` stage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgetpuParams {
    /// Where `edgetpu_compiler` comes from: `auto` (PATH, else the docker image under the docker
    /// executor, else predict only), `path`, `docker`, or `none` (predict only).
    #[serde(default)]
    pub compiler: CompilerSource,
    /// Compiler `-a`: allow more than one Edge TPU subgraph, so supported ops after a CPU op map too.
    #[serde(default)]
    pub allow_multiple_subgraphs: bool,
    /// Compiler `-m`: the Edge TPU runtime version to target (e.g. 13); the compiler's default if unset.
    /// Ops that arrived in a later runtime are predicted "Operation not supported".
    #[serde(default)]
    pub min_runtime_version: Option<u32>,
    /// The Edge TPU compiler release the prediction assumes (`16`, `15`, `14.1`, `2.1`, `2.0`,
    /// `2.0.267685300`, `1.0`); default: the latest, 16.
    #[serde(default)]
    pub compiler_version: Option<String>,
    /// Compiler `-n`: split the model into this many segments for pipelining over several TPUs.
    #[serde(default)]
    pub num_segments: Option<u32>,
    /// Compiler time limit in seconds (`-t` for compiler 16; the run is stopped 30 s later).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Fail the stage when fewer than this percentage of ops map to the Edge TPU (0 disables the gate).
    #[serde(default)]
    pub min_tpu_percent: f64,
}

fn default_timeout() -> u64 {
    180
}

/// The `edgetpu` stage.
pub struct EdgetpuStage;

/// File name of the report inside the output directory.
pub const REPORT_FILE: &str = artifact_schemas::edgetpu::FILE;
/// Directory of compiled models inside the output directory.
pub const COMPILED_DIR: &str = "compiled";

/// A row where prediction and compiler disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disagreement {
    pub op: String,
    pub status: String,
    pub predicted_count: usize,
    pub compiler_count: usize,
}

/// Compares the predicted table with the compiler's, row by row.
pub fn disagreements(predicted: &[TableRow], compiler: &[TableRow]) -> Vec<Disagreement> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for row in predicted.iter().chain(compiler.iter()) {
        let key = (row.op.clone(), row.status.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let count = |rows: &[TableRow], key: &(String, String)| -> usize {
        rows.iter()
            .filter(|r| r.op == key.0 && r.status == key.1)
            .map(|r| r.count)
            .sum()
    };
    keys.into_iter()
        .filter_map(|key| {
            let (p, c) = (count(predicted, &key), count(compiler, &key));
            (p != c).then_some(Disagreement {
                op: key.0,
                status: key.1,
                predicted_count: p,
                compiler_count: c,
            })
        })
        .collect()
}

impl Stage for EdgetpuStage {
    type Params = EdgetpuParams;
    const KIND: &'static str = "edgetpu";
    const DESCRIPTION: &'static str = "Predicts which ops the Edge TPU compiler maps (Coral's rules), lints the model, and compiles it with edgetpu_compiler when one is available.";

    fn inputs() -> Vec<InputSpec> {
        vec![InputSpec::one(
            "model",
            "the .tflite model to compile (8-bit quantized for the Edge TPU)",
        )]
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![
            OutputSpec::new(
                "report",
                "edgetpu.json: per-op mapping (compiled or predicted), summary, lint, compiler info",
            ),
            OutputSpec::new(
                "compiled",
                "compiled/: the _edgetpu.tflite and compiler .log when compiled; empty otherwise",
            ),
        ]
    }

    fn run(ctx: &StageContext, params: EdgetpuParams) -> Result<StageResult, StageError> {
        let model_path = ctx.input("model")?;
        let name = model_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let model = Model::from_path(model_path).map_err(|e| StageError::input(e.to_string()))?;
        let target = Target::new(
            params.compiler_version.as_deref(),
            params.min_runtime_version,
        )
        .map_err(|e| StageError::input(format!("edgetpu params: {e}")))?;
        let options = PredictOptions {
            allow_multiple_subgraphs: params.allow_multiple_subgraphs,
            target,
        };
        let analysis = analyze::analyze(&model, &name, options)
            .map_err(|e| StageError::input(e.to_string()))?;
        let findings = lint::lint(&model, &analysis);

        let compiled_dir = ctx.output_path(COMPILED_DIR);
        std::fs::create_dir_all(&compiled_dir)
            .map_err(|e| StageError::io(format!("creating {}", compiled_dir.display()), e))?;

        let mut warnings = Vec::new();
        let compilation = if analysis.compiled {
            warnings.push(format!(
                "{name} is already compiled for the Edge TPU; reporting what it runs where"
            ));
            None
        } else {
            match compiler::locate(ctx, params.compiler)? {
                Ok(compiler) => {
                    ctx.progress(0, Some(1), "compiling for the Edge TPU");
                    let flags = CompileFlags {
                        allow_multiple_subgraphs: params.allow_multiple_subgraphs,
                        min_runtime_version: params.min_runtime_version,
                        num_segments: params.num_segments,
                        timeout_secs: params.timeout_secs,
                    };
                    let compilation = compiler.compile(ctx, model_path, &compiled_dir, &flags)?;
                    ctx.progress(1, Some(1), "compiled");
                    Some(compilation)
                }
                Err(reason) => {
                    warnings.push(format!(
                        "{reason}. The Edge TPU mapping in edgetpu.json is a PREDICTION from Coral's documented \
                         rules, not compiler output; the model is not compiled"
                    ));
                    None
                }
            }
        };
        let report = build_report(&name, &analysis, &findings, compilation.as_ref(), &warnings);
        let compiled_ok = compilation
            .as_ref()
            .is_some_and(|c| c.exit_ok && c.output.succeeded && !c.models.is_empty());
        if let Some(c) = &compilation
            && !compiled_ok
        {
            warnings.push(format!(
                "edgetpu_compiler failed: {}",
                c.output
                    .failure
                    .as_deref()
                    .unwrap_or("no compiled model was written")
            ));
        }
        let report_path = ctx.output_path(REPORT_FILE);
        artifact_schemas::write(&report_path, &report)
            .map_err(|e| StageError::Other(e.to_string()))?;

        let (tpu, cpu, percent) = counts(&report);
        if params.min_tpu_percent > 0.0 && percent < params.min_tpu_percent {
            return Err(StageError::input(format!(
                "{name}: {percent:.1}% of ops ({tpu} of {}) {} on the Edge TPU, below min_tpu_percent {}; see {}",
                tpu + cpu,
                if compiled_ok {
                    "run"
                } else {
                    "are predicted to run"
                },
                params.min_tpu_percent,
                report_path.display()
            )));
        }
        let label = if analysis.compiled {
            "already compiled"
        } else if compiled_ok {
            "compiled"
        } else {
            "PREDICTION (not compiled)"
        };
        let first = analysis.summary.first_cpu_op.map_or(String::new(), |i| {
            format!(
                ", first CPU op {i} {}",
                analysis
                    .details
                    .get(i)
                    .map(|d| d.display_name.as_str())
                    .unwrap_or_default()
            )
        });
        Ok(StageResult::default()
            .output("report", REPORT_FILE)
            .output("compiled", COMPILED_DIR)
            .metric("compiled", compiled_ok || analysis.compiled)
            .metric("predicted", !(compiled_ok || analysis.compiled))
            .metric("tpu_ops", tpu)
            .metric("cpu_ops", cpu)
            .metric("tpu_percent", (percent * 10.0).round() / 10.0)
            .metric("lint_findings", findings.len())
            .with_warnings(warnings)
            .with_summary(format!(
                "{label}: {tpu}/{} ops on the Edge TPU{first}",
                tpu + cpu
            )))
    }
}

trait ResultExt {
    fn with_warnings(self, warnings: Vec<String>) -> Self;
    fn with_summary(self, summary: String) -> Self;
}

impl ResultExt for StageResult {
    fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }
    fn with_summary(mut self, summary: String) -> Self {
        self.summary = Some(summary);
        self
    }
}

fn counts(report: &EdgeTpuReport) -> (usize, usize, f64) {
    let summary = &report.summary;
    (summary.tpu_ops, summary.cpu_ops, summary.tpu_percent())
}

/// The `edgetpu.json` document.
pub fn build_report(
    name: &str,
    analysis: &Analysis,
    findings: &[lint::Finding],
    compilation: Option<&Compilation>,
    notes: &[String],
) -> EdgeTpuReport {
    let predicted_rows = table_rows(analysis);
    let compiled_ok =
        compilation.is_some_and(|c| c.exit_ok && c.output.succeeded && !c.models.is_empty());
    let compiler_json = compilation.map(|c| {
        json!({
            "command": c.command,
            "succeeded": compiled_ok,
            "version": c.output.version,
            "failure": c.output.failure,
            "errors": c.output.errors,
            "compile_ms": c.output.compile_ms,
            "on_chip_memory_used_bytes": c.output.on_chip_memory_used_bytes,
            "on_chip_memory_remaining_bytes": c.output.on_chip_memory_remaining_bytes,
            "off_chip_memory_used_bytes": c.output.off_chip_memory_used_bytes,
            "edgetpu_subgraphs": c.output.edgetpu_subgraphs,
            "total_ops": c.output.total_ops,
            "tpu_ops": c.output.tpu_ops.unwrap_or_else(|| c.output.table_tpu_ops()),
            "cpu_ops": c.output.cpu_ops.unwrap_or_else(|| c.output.table_cpu_ops()),
            "table": c.output.table,
            "models": c.models.iter().map(|m| Path::new(COMPILED_DIR).join(m)).collect::<Vec<_>>(),
            "logs": c.logs.iter().map(|m| Path::new(COMPILED_DIR).join(m)).collect::<Vec<_>>(),
        })
    });
    let disagreements = compilation
        .filter(|_| compiled_ok)
        .map(|c| disagreements(&predicted_rows, &c.output.table))
        .unwrap_or_default();
    // When compiled, the summary is the compiler's; the per-op list stays
    // the prediction (the compiler's table has no op indices).
    let summary = match compilation.filter(|_| compiled_ok) {
        Some(c) => {
            let tpu = c.output.tpu_ops.unwrap_or_else(|| c.output.table_tpu_ops());
            let cpu = c.output.cpu_ops.unwrap_or_else(|| c.output.table_cpu_ops());
            Summary {
                tpu_ops: tpu,
                cpu_ops: cpu,
                first_cpu_op: analysis.summary.first_cpu_op,
            }
        }
        None => analysis.summary.clone(),
    };
    EdgeTpuReport {
        model: name.to_owned(),
        compiled: compiled_ok || analysis.compiled,
        input_was_compiled: analysis.compiled,
        predicted: !(compiled_ok || analysis.compiled),
        mapping_source: if analysis.compiled {
            "compiled model"
        } else if compiled_ok {
            "edgetpu_compiler"
        } else {
            "prediction (Coral's documented rules; no compiler run)"
        }
        .to_owned(),
        notes: notes.to_vec(),
        ops: analysis.ops.clone(),
        summary,
        predicted_summary: Some(analysis.summary.clone()),
        assumed_compiler: analysis.target.map(|t| t.compiler.build.to_owned()),
        assumed_runtime: analysis.target.map(|t| t.runtime),
        model_error: analysis.model_error.clone(),
        min_runtime_version: analysis.min_runtime_version,
        op_details: analysis.details.clone(),
        lint: json!(findings),
        compiler: json!(compiler_json),
        disagreements: json!(disagreements),
    }
}
