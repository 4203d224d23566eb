//! The `report` stage: the pipeline's last step, wired to every bench stage.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use stage_api::{InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult};

use stage_report::gallery::GalleryParams;
use stage_report::intervals::BootstrapParams;
use stage_report::metrics::Verdict;
use stage_report::targets::{TargetSpec, default_targets};
use stage_report::{
    BaselineSource, FIGURES_DIR, HTML_FILE, MARKDOWN_FILE, METRICS_FILE, ReportError, ReportOptions,
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
    /// Accuracy and speed targets, each judged met, missed or inconclusive
    /// (bootstrap interval straddling the bound). A list of
    /// `{variant, metric, max_drop_points | at_least, vs?, id?, description?}`:
    /// `variant`/`vs` name a variant or a scheme (`float32`, `float16`,
    /// `dynamic`, `full_int8`, `toco`, `qat_int8`); `metric` is `map`,
    /// `map50` (with `max_drop_points`), `matched_iou` or `cpu_speedup`
    /// (with `at_least`). Default: the project's six targets; a list given
    /// here replaces them.
    #[serde(default = "default_targets")]
    pub targets: Vec<TargetSpec>,
    /// Paired bootstrap over the val images for the accuracy intervals.
    #[serde(default)]
    pub bootstrap: BootstrapParams,
    /// Sample val images drawn with every variant's detections (needs the
    /// `records` input and `evaluations`).
    #[serde(default)]
    pub gallery: GalleryParams,
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
            )
            .collects(artifact_schemas::bench::FILE),
            InputSpec {
                required: false,
                ..InputSpec::many(
                    "evaluations",
                    "evaluation.json of every variant (the bench stages' `evaluation`): per-image \
                     results for bootstrap intervals; without them accuracy has no intervals",
                )
                .collects(artifact_schemas::EVALUATION_FILE)
            },
            InputSpec::optional(
                "records",
                "the dataset's records directory (the benches' `records`): its val images are \
                 drawn with every variant's detections",
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
            OutputSpec::new(
                "figures",
                "figures/: precision-recall curves and sample images with every variant's \
                 boxes, as SVG files (also inline in report.html)",
            ),
        ]
    }

    fn run(ctx: &StageContext, params: ReportParams) -> Result<StageResult, StageError> {
        let benches: Vec<PathBuf> = ctx
            .inputs("benches")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let evaluations: Vec<PathBuf> = ctx
            .inputs("evaluations")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        for (index, target) in params.targets.iter().enumerate() {
            target
                .check()
                .map_err(|e| StageError::input(format!("report param `targets[{index}]`: {e}")))?;
        }
        params
            .bootstrap
            .check()
            .map_err(|e| StageError::input(format!("report param {e}")))?;
        let provenance: Vec<PathBuf> = ctx
            .inputs("provenance")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let options = ReportOptions {
            title: params.title,
            reference_variant: params.reference_variant,
            targets: params.targets,
            bootstrap: params.bootstrap,
            records: ctx.optional_input("records")?.map(PathBuf::from),
            gallery: params.gallery,
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
        let report = stage_report::generate(
            &benches,
            &evaluations,
            &options,
            baseline.as_ref(),
            ctx.output_dir(),
        )
        .map_err(to_stage_error)?;
        ctx.progress(1, Some(1), "report written");

        let doc = &report.doc;
        let count = |v: Verdict| doc.targets.iter().filter(|t| t.verdict == v).count();
        let (met, missed, inconclusive) = (
            count(Verdict::Met),
            count(Verdict::Missed),
            count(Verdict::Inconclusive),
        );
        let mut result = StageResult::default()
            .output("markdown", MARKDOWN_FILE)
            .output("html", HTML_FILE)
            .output("metrics", METRICS_FILE)
            .output("figures", FIGURES_DIR)
            .metric("variants", doc.variants.len())
            .metric("targets_met", met)
            .metric("targets_missed", missed)
            .metric("targets_inconclusive", inconclusive)
            .metric("report", stage_report::lock_metrics(doc));
        result.warnings = doc
            .targets
            .iter()
            .filter(|t| matches!(t.verdict, Verdict::Missed | Verdict::Inconclusive))
            .map(|t| {
                format!(
                    "target {}: {} ({})",
                    t.verdict.label(),
                    t.description,
                    t.detail
                )
            })
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
        | ReportError::BadEvaluation { .. }
        | ReportError::DifferentImages { .. }
        | ReportError::BadRecords { .. }
        | ReportError::BadBaseline { .. }
        | ReportError::BadProvenance { .. }
        | ReportError::NoBenches
        | ReportError::DuplicateVariant { .. }) => StageError::input(other.to_string()),
        other => StageError::Other(other.to_string()),
    }
}
