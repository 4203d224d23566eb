//! One `bench.json` row measured on a board: inputs preprocessed here, the
//! run on the board ([`super::run_on_device`]), then latency statistics,
//! detections and COCO accuracy computed here exactly as for a local bench.

use std::path::Path;
use std::time::Instant;

use stage_api::{StageContext, StageError};

use super::{DeviceJob, DeviceParams, DeviceRuntime, run_on_device};
use crate::detections::{self, CocoResult};
use crate::model_io::ModelIo;
use crate::stage::{BenchParams, accuracy, preprocess_inputs};
use crate::val_split::LabeledImage;
use artifact_schemas::bench::{BenchResults, Preprocessing, RUNTIME_CPU, RUNTIME_EDGETPU};

/// The model and images of the row.
pub struct DeviceRow<'a> {
    pub model_path: &'a Path,
    pub io: &'a ModelIo,
    pub images: &'a [LabeledImage],
}

impl DeviceRow<'_> {
    /// Measures on the board and fills `results` (latency, accuracy, device).
    pub fn measure(
        &self,
        ctx: &StageContext,
        params: &BenchParams,
        device: &DeviceParams,
        results: &mut BenchResults,
        coco_results: &mut Vec<CocoResult>,
        warnings: &mut Vec<String>,
    ) -> Result<(), StageError> {
        let io = self.io;
        let count = params.latency_images.max(1).min(self.images.len());
        let with_outputs = io.detection_outputs().is_some();
        let start = Instant::now();
        let prepared = if with_outputs {
            self.images
        } else {
            &self.images[..count]
        };
        let inputs = preprocess_inputs(io, prepared, params.normalization())?;
        let total_ms = start.elapsed().as_secs_f64() * 1e3;
        results.preprocessing = Preprocessing {
            images: prepared.len(),
            mean_ms: total_ms / prepared.len().max(1) as f64,
            total_ms,
        };
        let job = DeviceJob {
            model: self.model_path,
            io,
            limits: params.limits(),
            threads: params.threads,
            timing_inputs: &inputs[..count.min(inputs.len())],
            accuracy_inputs: if with_outputs { &inputs } else { &[] },
        };
        let run = run_on_device(ctx, device, &job, &ctx.scratch_dir().join("device"))?;

        results.runtime = match device.runtime {
            DeviceRuntime::Edgetpu => RUNTIME_EDGETPU,
            DeviceRuntime::Cpu => RUNTIME_CPU,
        }
        .to_owned();
        results.threads = params.threads;
        results.status_detail = Some(format!(
            "measured on {} ({}, {}, Python {}, runtime {})",
            run.info.host,
            run.info.machine,
            run.info.interpreter,
            run.info.python,
            run.info.runtime
        ));
        results.latency = Some(run.latency);
        if let Some([b, c, s, k]) = io.detection_outputs() {
            for (image, outputs) in self.images.iter().zip(&run.outputs) {
                let found = detections::decode(&outputs[b], &outputs[c], &outputs[s], &outputs[k]);
                coco_results.extend(detections::to_coco(
                    &found,
                    image.image_id,
                    image.width,
                    image.height,
                    params.label_offset,
                ));
            }
            results.accuracy = Some(accuracy(self.images, coco_results)?);
        } else {
            warnings.push(
                "the model has no TFLite_Detection_PostProcess op; accuracy is not computed"
                    .to_owned(),
            );
        }
        if device.runtime == DeviceRuntime::Edgetpu && !io.edgetpu_compiled {
            warnings.push(format!(
                "{} is not compiled for the Edge TPU: the delegate maps nothing and every op ran on {}'s CPU",
                results.model_file, run.info.host
            ));
        }
        if ctx.optional_input("float_model")?.is_some() {
            warnings.push(
                "quantization error is not measured in a device bench; bench the model locally for it".to_owned(),
            );
        }
        warnings.push(format!(
            "peak memory is not measured on {}; peak_rss_bytes is empty",
            run.info.host
        ));
        results.device = Some(run.info);
        Ok(())
    }
}
