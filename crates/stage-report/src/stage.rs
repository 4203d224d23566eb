//! The `report` stage: the pipeline's last step, wired to every bench stage.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use stage_api::{InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult};

use stage_report::metrics::Verdict;
use stage_report::targets::TargetThresholds;
use stage_report::{
    BaselineSource, HTML_FILE, MARKDOWN_FILE, METRICS_FILE, ReportError, ReportOptions,
};

/// Params of the report stage.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Title of the report.
    #[serde(default = "default_title")]
    pub title: String,
    /// Variant that accuracy deltas, size ratios and speedups are relative to
    /// (default: the float32 variant).
    #[serde(default)]
    pub reference_variant: Option<String>,
    /// A previous run to compare against: its report's `metrics.json` or its
    /// `pipeline.lock` (relative paths are taken from the workspace root).
    /// The report then shows the change of every metric per variant. Only
    /// the path is part of the cache key, not the file's content: to compare
    /// against a newer run, point at another file or use
    /// `cargo xtask report FILE --baseline LOCK`, which never caches.
    #[serde(default)]
    pub baseline: Option<PathBuf>,
    /// Accuracy and speed targets, reported as met or missed.
    #[serde(default)]
    pub targets: TargetThresholds,
    /// Notes shown verbatim in the report (dataset caveats, training budget).
    #[serde(default)]
    pub notes: Vec<String>,
}

fn default_title() -> String {
    "edgepipe quantization report".to_owned()
}

pub struct ReportStage;

impl Stage for ReportStage {
    type Params = ReportParams;
    const KIND: &'static str = "report";
    const DESCRIPTION: &'static str = "Compares the benchmarked model variants: Markdown and HTML report with plots, plus metrics.json.";

    fn inputs() -> Vec<InputSpec> {
        vec![
            InputSpec::many(
                "benches",
                "bench.json of every variant (the bench stages' `results`)",
            ),
            InputSpec {
                required: false,
                ..InputSpec::many(
                    "provenance",
                    "JSON outputs of earlier stages (dataset summary, training checkpoint \
                     directory, annotations) whose facts the report shows as provenance",
                )
            },
        ]
    }

    fn reproducibility() -> stage_api::Reproducibility {
        stage_api::Reproducibility::bytes_may_differ(
            "tables and plots show measured latencies, which vary with machine load",
        )
        .ignoring(&[
            "*latency*",
            "*_ms",
            "*fps",
            "*peak_rss*",
            "*speedup*",
            "targets_met",
            "targets_missed",
        ])
        .within("*", 1e-9, 1e-12)
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![
            OutputSpec::new(
                "markdown",
                "report.md: the comparison tables, targets, notes",
            ),
            OutputSpec::new(
                "html",
                "report.html: the same, self-contained, with inline SVG plots",
            ),
            OutputSpec::new(
                "metrics",
                "metrics.json: one entry per variant, targets, baseline diff",
            ),
        ]
    }

    fn run(ctx: &StageContext, params: ReportParams) -> Result<StageResult, StageError> {
        let benches: Vec<PathBuf> = ctx
            .inputs("benches")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let provenance: Vec<PathBuf> = ctx
            .inputs("provenance")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let options = ReportOptions {
            title: params.title,
            reference_variant: params.reference_variant,
            thresholds: params.targets,
            notes: params.notes,
            provenance: stage_report::provenance::from_paths(&provenance)
                .map_err(to_stage_error)?,
        };
        let baseline = params.baseline.map(|path| BaselineSource {
            label: path.display().to_string(),
            path: if path.is_absolute() {
                path
            } else {
                ctx.workspace_root().join(path)
            },
        });
        ctx.progress(0, Some(1), format!("reporting {} variants", benches.len()));
        let report =
            stage_report::generate(&benches, &options, baseline.as_ref(), ctx.output_dir())
                .map_err(to_stage_error)?;
        ctx.progress(1, Some(1), "report written");

        let doc = &report.doc;
        let count = |v: Verdict| doc.targets.iter().filter(|t| t.verdict == v).count();
        let (met, missed) = (count(Verdict::Met), count(Verdict::Missed));
        let mut result = StageResult::default()
            .output("markdown", MARKDOWN_FILE)
            .output("html", HTML_FILE)
            .output("metrics", METRICS_FILE)
            .metric("variants", doc.variants.len())
            .metric("targets_met", met)
            .metric("targets_missed", missed)
            .metric("report", stage_report::lock_metrics(doc));
        result.warnings = doc
            .targets
            .iter()
            .filter(|t| t.verdict == Verdict::Missed)
            .map(|t| format!("target missed: {} ({})", t.description, t.detail))
            .collect();
        result.summary = Some(format!(
            "{} variants, targets met {met}/{}",
            doc.variants.len(),
            doc.targets.len()
        ));
        Ok(result)
    }
}

fn to_stage_error(err: ReportError) -> StageError {
    match err {
        ReportError::Read { path, source } => {
            StageError::io(format!("reading {}", path.display()), source)
        }
        ReportError::Write { path, source } => {
            StageError::io(format!("writing {}", path.display()), source)
        }
        other @ (ReportError::BadBench { .. }
        | ReportError::BadBaseline { .. }
        | ReportError::BadProvenance { .. }
        | ReportError::NoBenches
        | ReportError::DuplicateVariant { .. }) => StageError::input(other.to_string()),
        other => StageError::Other(other.to_string()),
    }
}
