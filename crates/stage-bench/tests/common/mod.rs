//! Fixtures shared by the bench stage's end-to-end tests: val records of
//! dark images with bright squares, and the tiny SSD detector built by
//! `tests/python/make_ssd_fixture.py` in the managed Python environment.

use std::path::{Path, PathBuf};

use crate::reference::{MAKE_SSD_FIXTURE, run_script};
use serde_json::json;
use tfrecord::RecordWriter;
use tfrecord::od::{DetectionExample, DetectionObject};

/// Side of every fixture image, in pixels.
pub const SIZE: u32 = 64;
/// Side of a bright square, and of the detector's grid cell, in pixels.
pub const CELL: u32 = 8;

/// Writes `dir/val-00000-of-00001.tfrecord`: per `(name, corners)` one dark
/// `SIZE`×`SIZE` JPEG (`name.jpg`) with a bright `CELL`×`CELL` square,
/// labelled `pedestrian`, at each top-left corner.
pub fn write_square_records(
    dir: &Path,
    images: impl IntoIterator<Item = (String, Vec<(u32, u32)>)>,
) {
    std::fs::create_dir_all(dir).unwrap();
    let mut writer = RecordWriter::create(&dir.join("val-00000-of-00001.tfrecord")).unwrap();
    let s = SIZE as f32;
    for (name, corners) in images {
        let mut pixels = vec![0u8; (SIZE * SIZE * 3) as usize];
        let mut objects = Vec::new();
        for (x0, y0) in corners {
            for y in y0..y0 + CELL {
                for x in x0..x0 + CELL {
                    let i = ((y * SIZE + x) * 3) as usize;
                    pixels[i..i + 3].copy_from_slice(&[255, 255, 255]);
                }
            }
            objects.push(DetectionObject {
                xmin: x0 as f32 / s,
                ymin: y0 as f32 / s,
                xmax: (x0 + CELL) as f32 / s,
                ymax: (y0 + CELL) as f32 / s,
                label: 1,
                text: "pedestrian".into(),
                area: (CELL * CELL) as f32,
                ..Default::default()
            });
        }
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode(&pixels, SIZE, SIZE, image::ExtendedColorType::Rgb8)
            .unwrap();
        let example = DetectionExample {
            encoded: jpeg,
            format: "jpeg".into(),
            filename: format!("{name}.jpg"),
            source_id: name,
            sha256: String::new(),
            height: i64::from(SIZE),
            width: i64::from(SIZE),
            objects,
        };
        writer.write_example(&example.to_example()).unwrap();
    }
    writer.finish().unwrap();
}

/// The tiny SSD detector, float32 and int8, both ending in
/// `TFLite_Detection_PostProcess`.
pub struct SsdModels {
    pub float32: PathBuf,
    pub int8: PathBuf,
}

/// Builds [`SsdModels`] under `dir/models` with `python`.
pub fn make_ssd_models(python: &Path, dir: &Path) -> SsdModels {
    let made = run_script(
        python,
        MAKE_SSD_FIXTURE,
        &json!({"output_dir": dir.join("models")}),
        dir,
    )
    .unwrap();
    let model = |key: &str| PathBuf::from(made[key].as_str().unwrap());
    SsdModels {
        float32: model("float32"),
        int8: model("int8"),
    }
}
