//! The report's pictures render in a real browser: sample val images read
//! from records, every variant's boxes drawn over them, screenshotted with
//! headless Chromium and checked pixel by pixel. Chromium comes from
//! Debian's `chromium` package (`.ci/run` installs it); without it the test
//! is skipped with a note, and fails under CI (`CI=true`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use coco_eval::{
    ImageRecord, ObjectBox, PER_IMAGE_SCHEMA, PerImageEvaluation, ReferenceMatch, ScoredBox,
};
use serde_json::json;
use stage_report::gallery::GalleryParams;
use stage_report::{ReportOptions, generate};
use tfrecord::RecordWriter;
use tfrecord::od::{DetectionExample, DetectionObject};

const W: u32 = 320;
const H: u32 = 240;
const GRAY: u8 = 128;
/// The pedestrian: a dark rectangle.
const PERSON: [u32; 4] = [100, 60, 80, 140];
/// float32's and full_int8's colours in the report (plots::role_color).
const FLOAT_BLUE: [u8; 3] = [59, 91, 219];
const INT8_ORANGE: [u8; 3] = [232, 89, 12];

fn write_records(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut writer = RecordWriter::create(&dir.join("val-00000-of-00001.tfrecord")).unwrap();
    for n in 0..3 {
        let mut pixels = vec![GRAY; (W * H * 3) as usize];
        let [x0, y0, w, h] = PERSON;
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                let i = ((y * W + x) * 3) as usize;
                pixels[i..i + 3].copy_from_slice(&[40, 40, 40]);
            }
        }
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode(&pixels, W, H, image::ExtendedColorType::Rgb8)
            .unwrap();
        let (fw, fh) = (W as f32, H as f32);
        let example = DetectionExample {
            encoded: jpeg,
            format: "jpeg".into(),
            filename: format!("frame{n}.jpg"),
            source_id: format!("frame{n}"),
            sha256: String::new(),
            height: i64::from(H),
            width: i64::from(W),
            objects: vec![DetectionObject {
                xmin: x0 as f32 / fw,
                ymin: y0 as f32 / fh,
                xmax: (x0 + w) as f32 / fw,
                ymax: (y0 + h) as f32 / fh,
                label: 1,
                text: "pedestrian".into(),
                area: (w * h) as f32,
                ..Default::default()
            }],
        };
        writer.write_example(&example.to_example()).unwrap();
    }
    writer.finish().unwrap();
}

fn evaluation(variant: &str, shift: f64, score: f64) -> PerImageEvaluation {
    let [x, y, w, h] = PERSON.map(f64::from);
    PerImageEvaluation {
        schema: PER_IMAGE_SCHEMA,
        variant: variant.to_owned(),
        images: (1..=3)
            .map(|id| ImageRecord {
                image_id: id,
                source_id: format!("frame{}", id - 1),
                width: W,
                height: H,
                ground_truth: vec![ObjectBox {
                    category_id: 1,
                    bbox: [x, y, w, h],
                    area: w * h,
                    iscrowd: false,
                }],
                detections: vec![ScoredBox {
                    category_id: 1,
                    bbox: [x + shift, y + shift, w, h],
                    score,
                }],
                reference_match: Some(ReferenceMatch {
                    matched: 1,
                    iou_sum: 0.9,
                }),
            })
            .collect(),
    }
}

/// Writes bench.json + evaluation.json per variant; returns both lists.
fn write_run(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut benches = Vec::new();
    let mut evaluations = Vec::new();
    for (scheme, eval) in [
        ("float32", evaluation("float32", 0.0, 0.9)),
        ("full_int8", evaluation("full_int8 PTQ", 12.0, 0.6)),
    ] {
        let sub = dir.join(scheme);
        std::fs::create_dir_all(&sub).unwrap();
        let ap = eval.match_table().unwrap().full();
        let bench = common::complete(json!({
            "variant": eval.variant, "model_size_bytes": 1000, "scheme": scheme,
            "runtime": "litert-cpu", "status": "ok", "latency": {"mean_ms": 10.0},
            "accuracy": {"map": ap.map, "map_50": ap.map_50},
        }));
        std::fs::write(sub.join("bench.json"), bench.to_string()).unwrap();
        std::fs::write(
            sub.join("evaluation.json"),
            serde_json::to_vec(&eval).unwrap(),
        )
        .unwrap();
        benches.push(sub.join("bench.json"));
        evaluations.push(sub.join("evaluation.json"));
    }
    (benches, evaluations)
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Screenshots `page` at `width`×`height` CSS pixels into `png`.
fn screenshot(browser: &Path, page: &Path, png: &Path, width: u32, height: u32) -> image::RgbImage {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        png.is_file(),
        "chromium wrote no screenshot: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    image::open(png).unwrap().to_rgb8()
}

fn count(img: &image::RgbImage, want: impl Fn([u8; 3]) -> bool) -> usize {
    img.pixels().filter(|p| want(p.0)).count()
}

fn near(color: [u8; 3], tolerance: i32) -> impl Fn([u8; 3]) -> bool {
    move |p| {
        p.iter()
            .zip(color)
            .all(|(a, b)| (i32::from(*a) - i32::from(b)).abs() <= tolerance)
    }
}

#[test]
fn sample_images_with_every_variants_boxes_render_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("records");
    write_records(&records);
    let (benches, evaluations) = write_run(dir.path());
    let out = dir.path().join("out");
    let options = ReportOptions {
        title: "pictures".into(),
        records: Some(records.clone()),
        gallery: GalleryParams {
            images: 2,
            seed: 0,
            min_score: 0.3,
        },
        ..Default::default()
    };
    let report = generate(&benches, &evaluations, &options, None, &out).unwrap();

    // Two sampled images (of 3), each one SVG with both variants' panels.
    assert_eq!(report.figures.len(), 2);
    let figures = out.join("figures");
    let mut files: Vec<String> = std::fs::read_dir(&figures)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files.contains(&"precision-recall.svg".to_owned()));
    let first = &report.figures[0];
    let svg = std::fs::read_to_string(figures.join(&first.file)).unwrap();
    assert_eq!(
        svg.matches("data:image/jpeg;base64,/9j/").count(),
        1,
        "the JPEG is embedded once"
    );
    assert_eq!(
        svg.matches("<use href=").count(),
        2,
        "one panel per variant"
    );
    assert!(svg.contains(">pedestrian 0.90</text>") && svg.contains(">pedestrian 0.60</text>"));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains(&format!("![{0}](figures/{0})", first.file)),
        "{md}"
    );
    assert!(md.contains(
        "![Precision against recall at IoU 0.5 per variant](figures/precision-recall.svg)"
    ));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("data:image/jpeg;base64,").count(), 2);

    // The same report without records: no pictures of images, still a report.
    let plain = ReportOptions {
        records: None,
        ..options.clone()
    };
    let without = generate(
        &benches,
        &evaluations,
        &plain,
        None,
        &dir.path().join("plain"),
    )
    .unwrap();
    assert!(without.figures.is_empty() && without.pr_curves.len() == 2);

    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is not installed; `.ci/run` installs Debian's `chromium` package"
        );
        eprintln!(
            "skipped the browser check: chromium is not installed (apt-get install chromium)"
        );
        return;
    };
    // The figure alone: 2 panels of 360×270 under a 26-unit title row.
    let png = dir.path().join("figure.png");
    let shot = screenshot(&browser, &figures.join(&first.file), &png, 732, 296);
    assert_eq!(shot.dimensions(), (732, 296));
    // The photo is drawn (its gray fills most of both panels)...
    let gray = count(&shot, near([GRAY; 3], 10));
    assert!(gray > 2 * 360 * 270 / 2, "gray pixels: {gray}");
    // ...and so is each variant's box, in its colour: a 2.5-unit outline of
    // a 90×157 box and the label background (≈ 1,400 pixels each).
    let blue = count(&shot, near(FLOAT_BLUE, 40));
    let orange = count(&shot, near(INT8_ORANGE, 40));
    assert!(blue > 800 && orange > 800, "blue {blue}, orange {orange}");
    // Boxes sit on the photo: the left panel's box is blue, the right's orange.
    let left_blue = shot
        .enumerate_pixels()
        .filter(|(x, _, p)| *x < 360 && near(FLOAT_BLUE, 40)(p.0))
        .count();
    assert!(left_blue * 10 > blue * 9, "{left_blue} of {blue}");

    // The whole self-contained page, tall enough to show the pictures.
    let page_png = dir.path().join("report.png");
    let page = screenshot(&browser, &out.join("report.html"), &page_png, 1200, 5000);
    let page_gray = count(&page, near([GRAY; 3], 10));
    assert!(
        page_gray > 20_000,
        "the embedded photos do not show: {page_gray}"
    );
    // EDGEPIPE_KEEP_SCREENSHOTS=DIR keeps both screenshots for a look.
    if let Some(keep) = std::env::var_os("EDGEPIPE_KEEP_SCREENSHOTS") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&png, keep.join("figure.png")).unwrap();
        std::fs::copy(&page_png, keep.join("report.png")).unwrap();
    }
}
