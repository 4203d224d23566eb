//! The human-readable report: the compiler's `Operator  Count  Status`
//! table for the predicted (or compiled) mapping, then lint findings.

use crate::analyze::Analysis;
use crate::compiler_log::{TableRow, render_table};
use crate::lint::{Finding, Level};

/// Groups ops by (name, status) in order of first appearance, as the
/// compiler's table does.
pub fn table_rows(analysis: &Analysis) -> Vec<TableRow> {
    let mut rows: Vec<TableRow> = Vec::new();
    for op in &analysis.ops {
        match rows
            .iter_mut()
            .find(|r| r.op == op.op && r.status == op.status)
        {
            Some(row) => row.count += 1,
            None => rows.push(TableRow {
                op: op.op.clone(),
                count: 1,
                status: op.status.clone(),
            }),
        }
    }
    rows
}

/// The full text report for `edgetpu-check`.
pub fn render(model_name: &str, analysis: &Analysis, findings: &[Finding]) -> String {
    let mut text = String::new();
    let summary = &analysis.summary;
    if analysis.compiled {
        text.push_str(&format!("Compiled Edge TPU model: {model_name}\n"));
        if let Some(version) = analysis.min_runtime_version {
            text.push_str(&format!(
                "Edge TPU runtime version required: {version} or newer\n"
            ));
        }
        if let Some(compiler) = &analysis.package_compiler {
            text.push_str(&format!(
                "Compiler build recorded in the package: {compiler}\n"
            ));
        }
        text.push_str(&format!(
            "Ops in the model: {} (the Edge TPU custom op counts as one; the ops compiled into it are not listed in the file)\n",
            summary.tpu_ops + summary.cpu_ops
        ));
    } else {
        text.push_str(&format!(
            "PREDICTION for {model_name} (no Edge TPU compiler was run; statuses follow Coral's documented rules)\n"
        ));
        if let Some(target) = &analysis.target {
            text.push_str(&format!("Assumed: {}\n", target.describe()));
        }
        if let Some(error) = &analysis.model_error {
            text.push_str(&format!("\nInvalid model: {model_name}\n{error}\n"));
        }
    }
    text.push_str(&format!(
        "\nNumber of operations that will run on Edge TPU: {}\nNumber of operations that will run on CPU: {}\n",
        summary.tpu_ops, summary.cpu_ops
    ));
    if let Some(first) = summary.first_cpu_op {
        let name = analysis
            .details
            .get(first)
            .map(|d| d.display_name.as_str())
            .unwrap_or_default();
        text.push_str(&format!("First op on the CPU: {first} ({name})\n"));
    }
    if analysis.extra_subgraphs > 0 {
        text.push_str(&format!(
            "TFLite subgraphs not considered: {}\n",
            analysis.extra_subgraphs
        ));
    }
    text.push('\n');
    text.push_str(&render_table(&table_rows(analysis)));

    let reasons: Vec<String> = analysis
        .details
        .iter()
        .filter(|d| !d.reason.is_empty() && d.cut_by.is_none())
        .map(|d| format!("  op {:>4} {}: {}", d.index, d.display_name, d.reason))
        .collect();
    if !reasons.is_empty() {
        text.push_str("\nWhy ops stay on the CPU:\n");
        for line in reasons {
            text.push_str(&line);
            text.push('\n');
        }
    }
    if !findings.is_empty() {
        text.push_str("\nLint:\n");
        for finding in findings {
            let level = match finding.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Info => "info",
            };
            text.push_str(&format!(
                "  {level}[{}]: {}\n      fix: {}\n",
                finding.code, finding.message, finding.fix
            ));
        }
    }
    text
}
