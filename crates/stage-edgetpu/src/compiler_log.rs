//! Parses what `edgetpu_compiler` prints and the `.log` it writes.
//!
//! Both share the `Operator  Count  Status` table. The console output adds
//! a header (version, sizes, on-chip/off-chip memory, subgraph and op
//! counts); compiler 16 adds timeout-timer lines and a final
//! `Compilation succeeded!` / `Compilation failed!`; the `.log` has `Input:` /
//! `Output:` lines. Failures appear as `Invalid model: FILE` followed by the
//! reason, `Internal compiler error. Aborting!`, or `Compilation failed: ...`.
//! Unknown lines are ignored, so newer compilers still parse.

use serde::Serialize;

/// One row of the operator table (rows are per op *and* status).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableRow {
    pub op: String,
    pub count: usize,
    pub status: String,
}

/// Everything recognised in compiler output.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompilerOutput {
    /// `16.0.384591198`.
    pub version: Option<String>,
    pub compile_ms: Option<u64>,
    pub input_model: Option<String>,
    pub output_model: Option<String>,
    pub input_size_bytes: Option<u64>,
    pub output_size_bytes: Option<u64>,
    pub on_chip_memory_used_bytes: Option<u64>,
    pub on_chip_memory_remaining_bytes: Option<u64>,
    pub off_chip_memory_used_bytes: Option<u64>,
    pub edgetpu_subgraphs: Option<usize>,
    pub total_ops: Option<usize>,
    pub tpu_ops: Option<usize>,
    pub cpu_ops: Option<usize>,
    pub operation_log: Option<String>,
    pub table: Vec<TableRow>,
    /// `Model compiled successfully` or `Compilation succeeded!` seen.
    pub succeeded: bool,
    /// Why compilation failed, as the compiler said it.
    pub failure: Option<String>,
    /// `ERROR: ...` lines.
    pub errors: Vec<String>,
}

impl CompilerOutput {
    /// Ops on the TPU per the table (rows with "Mapped to Edge TPU").
    pub fn table_tpu_ops(&self) -> usize {
        self.table
            .iter()
            .filter(|r| r.status == crate::rules::status::MAPPED)
            .map(|r| r.count)
            .sum()
    }

    pub fn table_cpu_ops(&self) -> usize {
        self.table
            .iter()
            .filter(|r| r.status != crate::rules::status::MAPPED)
            .map(|r| r.count)
            .sum()
    }

    /// Adds what `other` knows that this one lacks (console + `.log`).
    pub fn merge(&mut self, other: CompilerOutput) {
        macro_rules! fill {
            ($($field:ident),*) => { $( if self.$field.is_none() { self.$field = other.$field; } )* };
        }
        fill!(
            version,
            compile_ms,
            input_model,
            output_model,
            input_size_bytes,
            output_size_bytes,
            on_chip_memory_used_bytes,
            on_chip_memory_remaining_bytes,
            off_chip_memory_used_bytes,
            edgetpu_subgraphs,
            total_ops,
            tpu_ops,
            cpu_ops,
            operation_log,
            failure
        );
        if self.table.is_empty() {
            self.table = other.table;
        }
        self.succeeded |= other.succeeded;
        self.errors.extend(other.errors);
    }
}

/// Parses sizes as the compiler prints them: `3.42MiB`, `1.75KiB`, `0.00B`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.trim().parse().ok()?;
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((value * scale).round() as u64)
}

fn after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix).map(str::trim)
}

/// Parses console output or a `.log` file.
pub fn parse(text: &str) -> CompilerOutput {
    let mut out = CompilerOutput::default();
    let mut in_table = false;
    let mut lines = text.lines().map(str::trim_end).peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if in_table {
            if let Some(row) = parse_row(trimmed) {
                out.table.push(row);
                continue;
            }
            if trimmed.is_empty() || trimmed.chars().all(|c| c == '-') {
                continue;
            }
            in_table = false;
        }
        if is_table_header(trimmed) {
            in_table = true;
            continue;
        }
        if let Some(v) = after(trimmed, "Edge TPU Compiler version") {
            out.version = Some(v.to_owned());
        } else if let Some(v) = after(trimmed, "Model compiled successfully in") {
            out.succeeded = true;
            out.compile_ms = v
                .trim_end_matches('.')
                .trim_end_matches("ms")
                .trim()
                .parse()
                .ok();
        } else if trimmed == "Compilation succeeded!" {
            out.succeeded = true;
        } else if let Some(v) = after(trimmed, "Input model:").or_else(|| after(trimmed, "Input:"))
        {
            out.input_model = Some(v.to_owned());
        } else if let Some(v) =
            after(trimmed, "Output model:").or_else(|| after(trimmed, "Output:"))
        {
            out.output_model = Some(v.to_owned());
        } else if let Some(v) = after(trimmed, "Input size:") {
            out.input_size_bytes = parse_size(v);
        } else if let Some(v) = after(trimmed, "Output size:") {
            out.output_size_bytes = parse_size(v);
        } else if let Some(v) = after(trimmed, "On-chip memory used for caching model parameters:")
        {
            out.on_chip_memory_used_bytes = parse_size(v);
        } else if let Some(v) = after(
            trimmed,
            "On-chip memory remaining for caching model parameters:",
        ) {
            out.on_chip_memory_remaining_bytes = parse_size(v);
        } else if let Some(v) = after(
            trimmed,
            "Off-chip memory used for streaming uncached model parameters:",
        ) {
            out.off_chip_memory_used_bytes = parse_size(v);
        } else if let Some(v) = after(trimmed, "Number of Edge TPU subgraphs:") {
            out.edgetpu_subgraphs = v.parse().ok();
        } else if let Some(v) = after(trimmed, "Total number of operations:") {
            out.total_ops = v.parse().ok();
        } else if let Some(v) = after(trimmed, "Number of operations that will run on Edge TPU:") {
            out.tpu_ops = v.parse().ok();
        } else if let Some(v) = after(trimmed, "Number of operations that will run on CPU:") {
            out.cpu_ops = v.parse().ok();
        } else if let Some(v) = after(trimmed, "Operation log:") {
            out.operation_log = Some(v.to_owned());
        } else if let Some(file) = after(trimmed, "Invalid model:") {
            let reason = lines
                .peek()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned);
            out.failure = Some(match reason {
                Some(reason) => format!("Invalid model: {file}: {reason}"),
                None => format!("Invalid model: {file}"),
            });
        } else if trimmed.starts_with("Internal compiler error") {
            out.failure = Some(trimmed.to_owned());
        } else if let Some(reason) = after(trimmed, "Compilation failed:") {
            out.failure = Some(reason.to_owned());
        } else if trimmed == "Compilation failed!" {
            out.failure
                .get_or_insert_with(|| "Compilation failed!".to_owned());
        } else if let Some(error) = after(trimmed, "ERROR:") {
            out.errors.push(error.to_owned());
        }
    }
    // Compiler 16 retries smaller segments with -d: a later success wins.
    if out.succeeded {
        out.failure = None;
    }
    out
}

fn is_table_header(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words == ["Operator", "Count", "Status"]
}

/// `CONV_2D                        55         Mapped to Edge TPU`.
fn parse_row(line: &str) -> Option<TableRow> {
    let mut parts = line.splitn(2, char::is_whitespace);
    let op = parts.next()?.trim();
    let rest = parts.next()?.trim_start();
    let mut rest_parts = rest.splitn(2, char::is_whitespace);
    let count: usize = rest_parts.next()?.parse().ok()?;
    let status = rest_parts.next()?.trim();
    let op_like = !op.is_empty()
        && op
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !op_like || status.is_empty() {
        return None;
    }
    Some(TableRow {
        op: op.to_owned(),
        count,
        status: status.to_owned(),
    })
}

/// Renders rows in the compiler's layout (column widths 31 and 11).
pub fn render_table(rows: &[TableRow]) -> String {
    let mut text = format!("{:<31}{:<11}{}\n", "Operator", "Count", "Status");
    text.push('\n');
    for row in rows {
        text.push_str(&format!("{:<31}{:<11}{}\n", row.op, row.count, row.status));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("0.00B"), Some(0));
        assert_eq!(parse_size("1.75KiB"), Some(1792));
        assert_eq!(parse_size("3.42MiB"), Some(3_586_130));
        assert_eq!(parse_size("12 parsecs"), None);
    }

    #[test]
    fn rows_need_an_op_name_a_count_and_a_status() {
        assert_eq!(
            parse_row("QUANTIZE                       11         Mapped to Edge TPU"),
            Some(TableRow {
                op: "QUANTIZE".into(),
                count: 11,
                status: "Mapped to Edge TPU".into()
            })
        );
        assert_eq!(parse_row("Number of operations: 3"), None);
        assert_eq!(parse_row("ADD 10"), None);
    }
}
