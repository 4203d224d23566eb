//! `report.md`: the comparison report as GitHub-flavoured Markdown.

use std::fmt::Write;

use crate::analysis::Report;
use crate::format::{self, MISSING};
use crate::metrics::{BaselineDiff, Verdict};
use crate::reference::{self, PUBLISHED, PUBLISHED_SOURCE};

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let doc = &report.doc;
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", escape(&doc.title));
    main_table(&mut out, report);
    targets(&mut out, report);
    published(&mut out, report);
    pictures(&mut out, report);
    if let Some(diff) = &doc.baseline {
        baseline(&mut out, diff);
    }
    notes(&mut out, report);
    details(&mut out, report);
    provenance(&mut out, report);
    out
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let align: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { ":--" } else { "--:" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| escape(c)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out.push('\n');
}

fn main_table(out: &mut String, report: &Report) {
    let doc = &report.doc;
    let reference = doc.reference_variant.as_deref().unwrap_or("float32");
    let _ = writeln!(out, "## Results per variant\n");
    let vs = format!("× {reference}");
    let delta_map = format!("Δ mAP vs {reference} (pts)");
    let delta = format!("Δ mAP@.5 vs {reference} (pts)");
    let header = [
        "Variant",
        "Scheme",
        "Size (MB)",
        vs.as_str(),
        "Ops TPU / CPU",
        "Mean (ms)",
        "p50 (ms)",
        "p99 (ms)",
        "FPS",
        "mAP (%)",
        "mAP@.5 (%)",
        delta_map.as_str(),
        delta.as_str(),
    ];
    let rows: Vec<Vec<String>> = doc
        .variants
        .iter()
        .map(|v| {
            vec![
                v.variant.clone(),
                format::scheme(v),
                format::fixed(v.size_mb, 2),
                format::ratio(v.size_vs_reference),
                format::ops(v),
                format::latency(v, v.latency_mean_ms),
                format::latency(v, v.latency_p50_ms),
                format::latency(v, v.latency_p99_ms),
                format::fps(v),
                format::percent(v.map) + &format::bracket(v.intervals.map, 100.0, 1, false),
                format::percent(v.map50) + &format::bracket(v.intervals.map50, 100.0, 1, false),
                format::signed(v.delta_map_points, 1)
                    + &format::bracket(v.intervals.delta_map_points, 1.0, 1, true),
                format::signed(v.delta_map50_points, 1)
                    + &format::bracket(v.intervals.delta_map50_points, 1.0, 1, true),
            ]
        })
        .collect();
    table(out, &header, &rows);
    if let Some(b) = &doc.bootstrap {
        let _ = writeln!(
            out,
            "Brackets: {:.0}% paired bootstrap intervals ({} resamples of the {} val images, seed {}).\n",
            b.confidence * 100.0,
            b.resamples,
            b.images,
            b.seed
        );
    }
}

fn verdict_mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Met => "✅ met",
        Verdict::Missed => "❌ missed",
        Verdict::Inconclusive => "❔ inconclusive",
        Verdict::NotEvaluated => "➖ not evaluated",
    }
}

fn targets(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Targets\n");
    let rows: Vec<Vec<String>> = report
        .doc
        .targets
        .iter()
        .map(|t| {
            vec![
                t.description.clone(),
                t.variant.clone().unwrap_or_else(|| MISSING.to_owned()),
                match t.measured {
                    Some(m) => format!("{m:.2} {}", t.unit),
                    None => MISSING.to_owned(),
                },
                match t.interval {
                    Some(_) => format::bracket(t.interval, 1.0, 2, false).trim().to_owned(),
                    None => MISSING.to_owned(),
                },
                verdict_mark(t.verdict).to_owned(),
                t.detail.clone(),
            ]
        })
        .collect();
    table(
        out,
        &[
            "Target", "Variant", "Measured", "Interval", "Verdict", "Detail",
        ],
        &rows,
    );
}

fn published(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Published Edge TPU reference (not measured here)\n");
    let _ = writeln!(
        out,
        "{PUBLISHED_SOURCE}, beside the same approach as measured by this run on CPU.\n"
    );
    let rows: Vec<Vec<String>> = PUBLISHED
        .iter()
        .map(|row| {
            let measured = reference::measured_beside(row, &report.doc.variants);
            vec![
                row.approach.to_owned(),
                format!("{:.1}", row.latency_ms),
                format!("{:.0}", row.fps),
                measured
                    .map(|v| v.variant.clone())
                    .unwrap_or_else(|| MISSING.to_owned()),
                measured
                    .map(|v| format::fixed(v.latency_mean_ms, 2))
                    .unwrap_or_else(|| MISSING.to_owned()),
                measured
                    .map(format::fps)
                    .unwrap_or_else(|| MISSING.to_owned()),
            ]
        })
        .collect();
    table(
        out,
        &[
            "Quantization approach",
            "Published: Edge TPU (ms)",
            "Published: FPS",
            "Measured here: variant",
            "Measured here: CPU mean (ms)",
            "Measured here: FPS",
        ],
        &rows,
    );
}

fn baseline(out: &mut String, diff: &BaselineDiff) {
    let _ = writeln!(out, "## Change versus baseline\n");
    let _ = writeln!(
        out,
        "Baseline: {} (“{}”). Each cell: current value (change = current − baseline); \
         cells without a change are unchanged. Every metric's change is in metrics.json.\n",
        diff.source, diff.title
    );
    let rows: Vec<Vec<String>> = format::change_rows(diff)
        .into_iter()
        .map(|(variant, cells)| {
            std::iter::once(variant)
                .chain(cells.into_iter().map(|c| match c.change {
                    Some(change) => format!("{} ({change})", c.current),
                    None => c.current,
                }))
                .collect()
        })
        .collect();
    let header: Vec<&str> = std::iter::once("Variant")
        .chain(format::HEADLINES.iter().map(|h| h.header))
        .collect();
    table(out, &header, &rows);
    if !diff.added.is_empty() {
        let _ = writeln!(out, "New variants: {}.\n", diff.added.join(", "));
    }
    if !diff.removed.is_empty() {
        let _ = writeln!(
            out,
            "Variants only in the baseline: {}.\n",
            diff.removed.join(", ")
        );
    }
    let rows: Vec<Vec<String>> = diff
        .targets
        .iter()
        .map(|t| {
            vec![
                t.description.clone(),
                t.baseline
                    .map(|v| verdict_mark(v).to_owned())
                    .unwrap_or_else(|| MISSING.to_owned()),
                verdict_mark(t.current).to_owned(),
            ]
        })
        .collect();
    if !rows.is_empty() {
        table(out, &["Target", "Baseline", "Current"], &rows);
    }
}

fn pictures(out: &mut String, report: &Report) {
    if report.pr_curves.is_empty() && report.figures.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Detections\n");
    if !report.pr_curves.is_empty() {
        let _ = writeln!(
            out,
            "![Precision against recall at IoU 0.5 per variant]({}/{})\n",
            crate::FIGURES_DIR,
            crate::PR_CURVES_FILE
        );
    }
    for figure in &report.figures {
        let _ = writeln!(
            out,
            "![{}]({}/{})\n\n{}\n",
            figure.file,
            crate::FIGURES_DIR,
            figure.file,
            figure.caption
        );
    }
}

fn notes(out: &mut String, report: &Report) {
    if report.notes.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Notes\n");
    for note in &report.notes {
        let _ = writeln!(out, "- {note}");
    }
    out.push('\n');
}

fn details(out: &mut String, report: &Report) {
    let variants = &report.doc.variants;
    let _ = writeln!(out, "## Details\n");
    let rows: Vec<Vec<String>> = variants
        .iter()
        .map(|v| {
            vec![
                v.variant.clone(),
                v.runtime.clone().unwrap_or_else(|| MISSING.to_owned()),
                format::fixed(v.threads, 0),
                format::dtypes(v),
                format::fixed(v.init_ms, 1),
                format::latency(v, v.first_inference_ms),
                format::latency(v, v.latency_std_ms),
                format::latency(v, v.latency_min_ms),
                format::latency(v, v.latency_p90_ms),
                format::latency(v, v.latency_max_ms),
                format::fixed(v.latency_samples, 0),
                format::fixed(v.preprocess_ms, 2),
                format::ratio(v.speedup_vs_reference),
                format::percent(v.ar100),
                format::fixed(v.peak_rss_mb, 1),
            ]
        })
        .collect();
    table(
        out,
        &[
            "Variant",
            "Runtime",
            "Threads",
            "Input → output",
            "Init (ms)",
            "First (ms)",
            "Std (ms)",
            "Min (ms)",
            "p90 (ms)",
            "Max (ms)",
            "Runs",
            "Preprocess (ms)",
            "Speedup",
            "AR@100 (%)",
            "Peak RSS (MB)",
        ],
        &rows,
    );
    let quantized: Vec<Vec<String>> = variants
        .iter()
        .filter(|v| {
            v.quant_box_mae.is_some()
                || v.quant_score_mae.is_some()
                || v.quant_matched_iou.is_some()
        })
        .map(|v| {
            vec![
                v.variant.clone(),
                format::fixed(v.quant_box_mae, 4),
                format::fixed(v.quant_score_mae, 4),
                format::fixed(v.quant_matched_iou, 3)
                    + &format::bracket(v.intervals.matched_iou, 1.0, 3, false),
                format::fixed(v.quant_detections_gained, 0),
                format::fixed(v.quant_detections_lost, 0),
            ]
        })
        .collect();
    if !quantized.is_empty() {
        let _ = writeln!(out, "### Quantization error versus the float model\n");
        table(
            out,
            &[
                "Variant",
                "Box MAE",
                "Score MAE",
                "Matched IoU",
                "Detections gained",
                "Detections lost",
            ],
            &quantized,
        );
    }
    let mapped: Vec<Vec<String>> = variants
        .iter()
        .filter(|v| v.tpu_ops.is_some() || v.cpu_ops.is_some() || v.edgetpu_compiled)
        .map(|v| {
            vec![
                v.variant.clone(),
                if v.edgetpu_compiled {
                    "compiled"
                } else {
                    "predicted"
                }
                .to_owned(),
                format::fixed(v.tpu_ops, 0),
                format::fixed(v.cpu_ops, 0),
                v.first_cpu_op.clone().unwrap_or_else(|| MISSING.to_owned()),
            ]
        })
        .collect();
    if !mapped.is_empty() {
        let _ = writeln!(out, "### Edge TPU mapping\n");
        table(
            out,
            &[
                "Variant",
                "Source",
                "Ops on TPU",
                "Ops on CPU",
                "First op on CPU",
            ],
            &mapped,
        );
    }
}

fn provenance(out: &mut String, report: &Report) {
    let doc = &report.doc;
    let _ = writeln!(out, "## Provenance\n");
    if doc.provenance.is_empty() {
        let _ = writeln!(out, "The bench results carry no provenance.\n");
    } else {
        for (key, value) in &doc.provenance {
            let _ = writeln!(out, "- **{}**: {}", escape(key), escape(value));
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Bench results read:\n");
    for input in &doc.inputs {
        let _ = writeln!(
            out,
            "- `{}` ({}) blake3 `{}`",
            input.variant,
            input.file,
            short(&input.blake3)
        );
    }
}

fn short(digest: &str) -> &str {
    digest.get(..16).unwrap_or(digest)
}

/// Escapes what would break a table cell or start markup.
fn escape(text: &str) -> String {
    text.replace('|', "\\|")
        .replace('\n', " ")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
