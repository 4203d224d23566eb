//! `report.html`: one self-contained page — inline CSS, inline SVG plots, no
//! scripts, fonts or links to fetch — so it can be mailed or archived as is.

use std::fmt::Write;

use crate::analysis::Report;
use crate::error::ReportError;
use crate::format::{self, MISSING};
use crate::metrics::{BaselineDiff, VariantMetrics, Verdict};
use crate::plots;
use crate::reference::{self, PUBLISHED, PUBLISHED_SOURCE};

const STYLE: &str = r#"
:root { --ink:#212529; --muted:#6c757d; --line:#dee2e6; --soft:#f8f9fa; --accent:#3b5bdb;
  --good:#2b8a3e; --good-bg:#ebfbee; --bad:#c92a2a; --bad-bg:#fff5f5; --na:#868e96; --na-bg:#f1f3f5; }
* { box-sizing: border-box; }
body { margin:0; background:#f1f3f5; color:var(--ink);
  font: 14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 24px 20px 56px; }
header { background: linear-gradient(135deg, #1c2a4a, #3b5bdb); color: #fff; padding: 28px 32px;
  border-radius: 12px; margin-bottom: 22px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header p { margin: 0; opacity: .85; }
section { background:#fff; border:1px solid var(--line); border-radius: 12px; padding: 20px 24px;
  margin-bottom: 20px; }
h2 { font-size: 17px; margin: 0 0 12px; font-weight: 650; }
h3 { font-size: 14px; margin: 18px 0 8px; color: var(--muted); font-weight: 600;
  text-transform: uppercase; letter-spacing: .04em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 7px 8px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: var(--soft);
  border-bottom: 2px solid var(--line); }
th:first-child, td:first-child { text-align: left; }
td.text, th.text { text-align: left; }
tbody tr:hover { background: #f8f9ff; }
.chip { display:inline-block; width:10px; height:10px; border-radius:3px; margin-right:8px;
  vertical-align: -1px; }
.variant { font-weight: 600; }
.muted { color: var(--muted); }
.pos { color: var(--good); } .neg { color: var(--bad); } .small { font-size: 12px; }
.tag { display:inline-block; font-size:11px; padding:1px 7px; border-radius:999px;
  background: var(--na-bg); color: var(--muted); margin-left: 6px; font-weight: 500; }
.cards { display:grid; grid-template-columns: repeat(auto-fit, minmax(250px, 1fr)); gap: 14px; }
.card { border:1px solid var(--line); border-radius:10px; padding: 14px 16px; }
.card.met { background: var(--good-bg); border-color: #b2f2bb; }
.card.missed { background: var(--bad-bg); border-color: #ffc9c9; }
.card.not_evaluated { background: var(--na-bg); }
.card.inconclusive { background: #fff9db; border-color: #ffe066; }
.card.inconclusive .verdict { color: #e67700; }
figure.sample svg { width: 100%; height: auto; }
.ci { color: var(--muted); font-size: 12px; white-space: nowrap; }
.card .verdict { font-size: 12px; font-weight: 700; text-transform: uppercase; letter-spacing: .05em; }
.card.met .verdict { color: var(--good); } .card.missed .verdict { color: var(--bad); }
.card.not_evaluated .verdict { color: var(--na); }
.card .what { font-weight: 600; margin: 4px 0; }
.card .value { font-size: 24px; font-weight: 650; }
.card .detail { font-size: 12px; color: var(--muted); }
.pair { display:grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 860px) { .pair { grid-template-columns: 1fr; } }
.panel { border:1px solid var(--line); border-radius:10px; padding: 12px 14px; }
.panel.published { background: #fff9db; border-color: #ffe066; }
.panel .label { font-size: 12px; font-weight: 700; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); margin-bottom: 6px; }
.panel.published .label { color: #a07700; }
figure { margin: 0 0 18px; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: var(--muted); margin-top: 4px; }
ul.notes { margin: 0; padding-left: 20px; } ul.notes li { margin-bottom: 6px; }
dl { display:grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dt { font-weight: 600; } dd { margin: 0; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft);
  padding: 1px 5px; border-radius: 4px; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 10px; }
"#;

/// Renders the whole page.
pub fn render(report: &Report) -> Result<String, ReportError> {
    let doc = &report.doc;
    let latency_svg = inline_svg(&plots::latency_distribution(report)?);
    let scatter_svg = inline_svg(&plots::accuracy_vs_latency(report)?);
    let size_svg = inline_svg(&plots::model_sizes(report)?);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n\
         <header><h1>{title}</h1><p>{count} variant{s} · reference: {reference}</p></header>",
        title = esc(&doc.title),
        count = doc.variants.len(),
        s = if doc.variants.len() == 1 { "" } else { "s" },
        reference = esc(doc.reference_variant.as_deref().unwrap_or("none")),
    );
    targets(&mut out, report);
    main_table(&mut out, report);
    published(&mut out, report);
    let _ = writeln!(
        out,
        "<section><h2>Plots</h2>\n\
         <figure>{latency_svg}<figcaption>Latency per inference: box = quartiles, whiskers = 1.5 × IQR, \
         bar = median, hollow circle = mean, dots = every timed run.</figcaption></figure>\n\
         <figure>{scatter_svg}<figcaption>Accuracy versus mean latency; bubble area is proportional to model size. \
         Up and to the left is better.</figcaption></figure>\n\
         <figure>{size_svg}<figcaption>Model file size; the ratio is relative to the reference variant.</figcaption></figure>\n\
         </section>"
    );
    pictures(&mut out, report)?;
    if let Some(diff) = &doc.baseline {
        baseline(&mut out, diff, &doc.variants);
    }
    notes(&mut out, report);
    details(&mut out, report);
    provenance(&mut out, report);
    let _ = writeln!(
        out,
        "<footer>Generated by edgepipe from {} bench result{}. Machine-readable values: metrics.json.</footer>\n\
         </main>\n</body>\n</html>",
        doc.inputs.len(),
        if doc.inputs.len() == 1 { "" } else { "s" }
    );
    Ok(out)
}

/// Precision–recall curves and the sample images with every variant's boxes.
fn pictures(out: &mut String, report: &Report) -> Result<(), ReportError> {
    if report.pr_curves.is_empty() && report.figures.is_empty() {
        return Ok(());
    }
    out.push_str("<section><h2>Detections</h2>\n");
    if !report.pr_curves.is_empty() {
        let _ = writeln!(
            out,
            "<figure>{}<figcaption>Precision against recall at IoU 0.5 over the val split \
             (COCO's interpolated precision); the area under a curve is the variant's mAP@.5.</figcaption></figure>",
            inline_svg(&plots::precision_recall(&report.pr_curves)?)
        );
    }
    for figure in &report.figures {
        let _ = writeln!(
            out,
            "<figure class=\"sample\">{}<figcaption>{}</figcaption></figure>",
            inline_svg(&figure.svg),
            code_spans(&esc(&figure.caption))
        );
    }
    out.push_str("</section>\n");
    Ok(())
}

/// Inline SVG needs no namespace declaration in HTML; dropping it keeps the
/// page free of any URL.
fn inline_svg(svg: &str) -> String {
    svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
        .replace(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "")
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn variant_cell(v: &VariantMetrics) -> String {
    format!(
        "<span class=\"chip\" style=\"background:{}\"></span><span class=\"variant\">{}</span>",
        plots::role_hex(v.role),
        esc(&v.variant)
    )
}

fn signed_cell(value: Option<f64>, decimals: usize) -> String {
    let text = format::signed(value, decimals);
    let class = match value {
        Some(v) if v >= 0.05 => "pos",
        Some(v) if v <= -0.05 => "neg",
        _ => "muted",
    };
    format!("<span class=\"{class}\">{}</span>", esc(&text))
}

/// An interval in brackets, muted (nothing without one).
fn ci(bracket: String) -> String {
    if bracket.is_empty() {
        bracket
    } else {
        format!(" <span class=\"ci\">{}</span>", esc(bracket.trim()))
    }
}

fn cell(text: &str) -> String {
    if text == MISSING || text == format::NO_DEVICE {
        format!("<span class=\"muted\">{}</span>", esc(text))
    } else {
        esc(text)
    }
}

fn table(out: &mut String, header: &[&str], rows: &[Vec<String>], text_columns: &[usize]) {
    out.push_str("<div class=\"scroll\"><table><thead><tr>");
    for (i, h) in header.iter().enumerate() {
        let class = if text_columns.contains(&i) {
            " class=\"text\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if text_columns.contains(&i) {
                " class=\"text\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{c}</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn targets(out: &mut String, report: &Report) {
    out.push_str("<section><h2>Targets</h2><div class=\"cards\">\n");
    for t in &report.doc.targets {
        let class = match t.verdict {
            Verdict::Met => "met",
            Verdict::Missed => "missed",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotEvaluated => "not_evaluated",
        };
        let value = match t.measured {
            Some(m) => format!(
                "{m:.2} <span class=\"muted\" style=\"font-size:13px\">{}</span>{}",
                esc(&t.unit),
                ci(format::bracket(t.interval, 1.0, 2, false))
            ),
            None => "<span class=\"muted\">—</span>".to_owned(),
        };
        let _ = writeln!(
            out,
            "<div class=\"card {class}\"><div class=\"verdict\">{}</div><div class=\"what\">{}</div>\
             <div class=\"value\">{value}</div><div class=\"detail\">{}</div></div>",
            t.verdict.label(),
            esc(&t.description),
            code_spans(&esc(&t.detail))
        );
    }
    out.push_str("</div></section>\n");
}

fn main_table(out: &mut String, report: &Report) {
    let doc = &report.doc;
    let reference = doc.reference_variant.as_deref().unwrap_or("float32");
    out.push_str("<section><h2>Results per variant</h2>\n");
    let vs = format!("× {reference}");
    let delta_map = "Δ mAP (pts)".to_owned();
    let delta = "Δ mAP@.5 (pts)".to_owned();
    let rows: Vec<Vec<String>> = doc
        .variants
        .iter()
        .map(|v| {
            let ops = match (v.tpu_ops, v.cpu_ops) {
                (None, None) => cell(MISSING),
                (tpu, cpu) => format!(
                    "{} / {}{}",
                    format::fixed(tpu, 0),
                    format::fixed(cpu, 0),
                    if v.ops_predicted {
                        "<span class=\"tag\">predicted</span>"
                    } else {
                        ""
                    }
                ),
            };
            vec![
                variant_cell(v),
                cell(&format::scheme(v)),
                cell(&format::fixed(v.size_mb, 2)),
                cell(&format::ratio(v.size_vs_reference)),
                ops,
                cell(&format::latency(v, v.latency_mean_ms)),
                cell(&format::latency(v, v.latency_p50_ms)),
                cell(&format::latency(v, v.latency_p99_ms)),
                cell(&format::fps(v)),
                cell(&format::percent(v.map))
                    + &ci(format::bracket(v.intervals.map, 100.0, 1, false)),
                cell(&format::percent(v.map50))
                    + &ci(format::bracket(v.intervals.map50, 100.0, 1, false)),
                signed_cell(v.delta_map_points, 1)
                    + &ci(format::bracket(v.intervals.delta_map_points, 1.0, 1, true)),
                signed_cell(v.delta_map50_points, 1)
                    + &ci(format::bracket(
                        v.intervals.delta_map50_points,
                        1.0,
                        1,
                        true,
                    )),
            ]
        })
        .collect();
    table(
        out,
        &[
            "Variant",
            "Scheme",
            "Size (MB)",
            &vs,
            "Ops TPU / CPU",
            "Mean (ms)",
            "p50 (ms)",
            "p99 (ms)",
            "FPS",
            "mAP (%)",
            "mAP@.5 (%)",
            &delta_map,
            &delta,
        ],
        &rows,
        &[0, 1],
    );
    let _ = writeln!(
        out,
        "<p class=\"muted\" style=\"margin:10px 0 0\">Δ mAP and Δ mAP@.5 in percentage points versus <code>{}</code>. \
         Latency is per inference on CPU, excluding preprocessing.{}</p></section>",
        esc(reference),
        match &doc.bootstrap {
            Some(b) => format!(
                " Brackets: {:.0}% paired bootstrap intervals ({} resamples of the {} val images, seed {}).",
                b.confidence * 100.0,
                b.resamples,
                b.images,
                b.seed
            ),
            None => String::new(),
        }
    );
}

fn published(out: &mut String, report: &Report) {
    out.push_str("<section><h2>Published Edge TPU reference</h2><div class=\"pair\">\n");
    let _ = write!(
        out,
        "<div class=\"panel published\"><div class=\"label\">Published reference — not measured here</div>\
         <p class=\"muted\" style=\"margin:0 0 8px\">{}</p>",
        esc(PUBLISHED_SOURCE)
    );
    let rows: Vec<Vec<String>> = PUBLISHED
        .iter()
        .map(|r| {
            vec![
                esc(r.approach),
                format!("{:.1}", r.latency_ms),
                format!("{:.0}", r.fps),
            ]
        })
        .collect();
    table(
        out,
        &["Quantization approach", "Inference (ms)", "FPS"],
        &rows,
        &[0],
    );
    out.push_str("</div>\n<div class=\"panel\"><div class=\"label\">Measured by this run — CPU, not Edge TPU</div>\
        <p class=\"muted\" style=\"margin:0 0 8px\">The same approaches as run here with LiteRT on this machine's CPU.</p>");
    let rows: Vec<Vec<String>> = PUBLISHED
        .iter()
        .map(
            |r| match reference::measured_beside(r, &report.doc.variants) {
                Some(v) => vec![
                    variant_cell(v),
                    cell(&format::fixed(v.latency_mean_ms, 2)),
                    cell(&format::fps(v)),
                ],
                None => vec![
                    format!(
                        "<span class=\"muted\">no {} variant</span>",
                        esc(r.approach)
                    ),
                    cell(MISSING),
                    cell(MISSING),
                ],
            },
        )
        .collect();
    table(out, &["Variant", "Mean (ms)", "FPS"], &rows, &[0]);
    out.push_str("</div></div></section>\n");
}

fn verdict_html(v: Option<Verdict>) -> String {
    match v {
        Some(Verdict::Met) => "<span class=\"pos\">met</span>".to_owned(),
        Some(Verdict::Missed) => "<span class=\"neg\">missed</span>".to_owned(),
        Some(Verdict::Inconclusive) => "<span class=\"muted\">inconclusive</span>".to_owned(),
        Some(Verdict::NotEvaluated) => "<span class=\"muted\">not evaluated</span>".to_owned(),
        None => cell(MISSING),
    }
}

fn baseline(out: &mut String, diff: &BaselineDiff, variants: &[VariantMetrics]) {
    let _ = writeln!(
        out,
        "<section><h2>Change versus baseline</h2><p class=\"muted\" style=\"margin-top:0\">Baseline: \
         <code>{}</code> (“{}”). Each cell: current value, and below it the change (current − baseline), \
         green where it improved; cells without a change are unchanged. Every metric's change is in metrics.json.</p>",
        esc(&diff.source),
        esc(&diff.title)
    );
    let rows: Vec<Vec<String>> = format::change_rows(diff)
        .into_iter()
        .map(|(variant, cells)| {
            let current = variants.iter().find(|v| v.variant == variant);
            let name = match current {
                Some(v) => variant_cell(v),
                None => format!("<span class=\"variant\">{}</span>", esc(&variant)),
            };
            std::iter::once(name)
                .chain(cells.into_iter().map(|c| {
                    let class = match c.improved {
                        Some(true) => "pos",
                        Some(false) => "neg",
                        None => "muted",
                    };
                    match c.change {
                        Some(change) => format!(
                            "{}<br><span class=\"{class} small\">{}</span>",
                            cell(&c.current),
                            esc(&change)
                        ),
                        None => cell(&c.current),
                    }
                }))
                .collect()
        })
        .collect();
    let header: Vec<&str> = std::iter::once("Variant")
        .chain(format::HEADLINES.iter().map(|h| h.header))
        .collect();
    table(out, &header, &rows, &[0]);
    if !diff.added.is_empty() {
        let _ = writeln!(out, "<p>New variants: {}.</p>", esc(&diff.added.join(", ")));
    }
    if !diff.removed.is_empty() {
        let _ = writeln!(
            out,
            "<p>Variants only in the baseline: {}.</p>",
            esc(&diff.removed.join(", "))
        );
    }
    if !diff.targets.is_empty() {
        out.push_str("<h3>Targets</h3>");
        let rows: Vec<Vec<String>> = diff
            .targets
            .iter()
            .map(|t| {
                vec![
                    esc(&t.description),
                    verdict_html(t.baseline),
                    verdict_html(Some(t.current)),
                ]
            })
            .collect();
        table(out, &["Target", "Baseline", "Current"], &rows, &[0]);
    }
    out.push_str("</section>\n");
}

fn notes(out: &mut String, report: &Report) {
    if report.notes.is_empty() {
        return;
    }
    out.push_str("<section><h2>Notes</h2><ul class=\"notes\">\n");
    for note in &report.notes {
        let _ = writeln!(out, "<li>{}</li>", code_spans(&esc(note)));
    }
    out.push_str("</ul></section>\n");
}

/// Turns Markdown-style `code` spans of a note into `<code>` elements.
fn code_spans(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{part}</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

fn details(out: &mut String, report: &Report) {
    let variants = &report.doc.variants;
    out.push_str("<section><h2>Details</h2>\n<h3>Timing</h3>");
    let rows: Vec<Vec<String>> = variants
        .iter()
        .map(|v| {
            vec![
                variant_cell(v),
                cell(&format::fixed(v.init_ms, 1)),
                cell(&format::latency(v, v.first_inference_ms)),
                cell(&format::latency(v, v.latency_min_ms)),
                cell(&format::latency(v, v.latency_p90_ms)),
                cell(&format::latency(v, v.latency_max_ms)),
                cell(&format::latency(v, v.latency_std_ms)),
                cell(&format::fixed(v.latency_samples, 0)),
                cell(&format::fixed(v.preprocess_ms, 2)),
                cell(&format::ratio(v.speedup_vs_reference)),
            ]
        })
        .collect();
    table(
        out,
        &[
            "Variant",
            "Init (ms)",
            "First run (ms)",
            "Min (ms)",
            "p90 (ms)",
            "Max (ms)",
            "Std (ms)",
            "Timed runs",
            "Preprocess (ms)",
            "Speedup",
        ],
        &rows,
        &[0],
    );
    out.push_str("<h3>Runtime, tensors and memory</h3>");
    let rows: Vec<Vec<String>> = variants
        .iter()
        .map(|v| {
            vec![
                variant_cell(v),
                cell(v.runtime.as_deref().unwrap_or(MISSING)),
                cell(&format::fixed(v.threads, 0)),
                cell(&format::dtypes(v)),
                cell(&format::percent(v.ar100)),
                cell(&format::fixed(v.peak_rss_mb, 1)),
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
            "AR@100 (%)",
            "Peak RSS (MB)",
        ],
        &rows,
        &[0, 1],
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
                variant_cell(v),
                cell(&format::fixed(v.quant_box_mae, 4)),
                cell(&format::fixed(v.quant_score_mae, 4)),
                cell(&format::fixed(v.quant_matched_iou, 3))
                    + &ci(format::bracket(v.intervals.matched_iou, 1.0, 3, false)),
                cell(&format::fixed(v.quant_detections_gained, 0)),
                cell(&format::fixed(v.quant_detections_lost, 0)),
            ]
        })
        .collect();
    if !quantized.is_empty() {
        out.push_str("<h3>Quantization error versus the float model</h3>");
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
            &[0],
        );
    }
    let mapped: Vec<Vec<String>> = variants
        .iter()
        .filter(|v| v.tpu_ops.is_some() || v.cpu_ops.is_some() || v.edgetpu_compiled)
        .map(|v| {
            vec![
                variant_cell(v),
                if v.edgetpu_compiled {
                    "compiled".to_owned()
                } else {
                    "predicted".to_owned()
                },
                cell(&format::fixed(v.tpu_ops, 0)),
                cell(&format::fixed(v.cpu_ops, 0)),
                v.first_cpu_op
                    .as_deref()
                    .map(|op| format!("<code>{}</code>", esc(op)))
                    .unwrap_or_else(|| cell(MISSING)),
            ]
        })
        .collect();
    if !mapped.is_empty() {
        out.push_str("<h3>Edge TPU mapping</h3>");
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
            &[0, 1, 4],
        );
    }
    out.push_str("</section>\n");
}

fn provenance(out: &mut String, report: &Report) {
    let doc = &report.doc;
    out.push_str("<section><h2>Provenance</h2>\n");
    if doc.provenance.is_empty() {
        out.push_str("<p class=\"muted\">The bench results carry no provenance.</p>\n");
    } else {
        out.push_str("<dl>");
        for (key, value) in &doc.provenance {
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(key), esc(value));
        }
        out.push_str("</dl>\n");
    }
    out.push_str("<h3>Bench results read</h3>");
    let rows: Vec<Vec<String>> = doc
        .inputs
        .iter()
        .map(|i| {
            vec![
                esc(&i.variant),
                format!("<code>{}</code>", esc(&i.file)),
                format!(
                    "<code>{}</code>",
                    esc(i.blake3.get(..16).unwrap_or(&i.blake3))
                ),
            ]
        })
        .collect();
    table(out, &["Variant", "File", "BLAKE3"], &rows, &[0, 1, 2]);
    out.push_str("</section>\n");
}
