//! One `bench.json` row measured on a board: inputs preprocessed here, the
//! run on the board ([`super::run_on_device`]), then the same [`Pass`] a
//! local bench makes, from which the stage computes detections, COCO
//! accuracy and quantization error exactly as for a local row.

use std::path::Path;
use std::time::Instant;

use stage_api::{StageContext, StageError};

use super::{DeviceJob, DeviceParams, DeviceRuntime, run_on_device};
use crate::model_io::ModelIo;
use crate::stage::{BenchParams, Pass, preprocess_inputs};
use crate::val_split::LabeledImage;
use artifact_schemas::bench::{BenchResults, Preprocessing, RUNTIME_CPU, RUNTIME_EDGETPU};

/// The model and images of the row.
pub struct DeviceRow<'a> {
    pub model_path: &'a Path,
    pub io: &'a ModelIo,
    pub images: &'a [LabeledImage],
    /// Whether the model's outputs for every image come back (for accuracy
    /// or a comparison with the float parent); otherwise only timings do.
    pub with_outputs: bool,
}

impl DeviceRow<'_> {
    /// Measures on the board: fills latency, runtime, peak memory and the
    /// device in `results`, and returns the board's outputs as a [`Pass`]
    /// (empty unless `with_outputs`).
    pub(crate) fn measure(
        &self,
        ctx: &StageContext,
        params: &BenchParams,
        device: &DeviceParams,
        results: &mut BenchResults,
        warnings: &mut Vec<String>,
    ) -> Result<Pass, StageError> {
        let io = self.io;
        let count = params.latency_images.max(1).min(self.images.len());
        let start = Instant::now();
        let prepared = if self.with_outputs {
            self.images
        } else {
            &self.images[..count]
        };
        let inputs = preprocess_inputs(io, prepared, params.normalization())?;
        let total_ms = start.elapsed().as_secs_f64() * 1e3;
        let job = DeviceJob {
            model: self.model_path,
            io,
            limits: params.limits(),
            threads: params.threads,
            timing_inputs: &inputs[..count.min(inputs.len())],
            accuracy_inputs: if self.with_outputs { &inputs } else { &[] },
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
        results.peak_rss_bytes = run.peak_rss_bytes;
        if device.runtime == DeviceRuntime::Edgetpu && !io.edgetpu_compiled {
            warnings.push(format!(
                "{} is not compiled for the Edge TPU: the delegate maps nothing and every op ran on {}'s CPU",
                results.model_file, run.info.host
            ));
        }
        results.device = Some(run.info);

        let mut pass = Pass::new(Preprocessing {
            images: prepared.len(),
            mean_ms: total_ms / prepared.len().max(1) as f64,
            total_ms,
        });
        for outputs in &run.outputs {
            pass.push(io, outputs);
        }
        Ok(pass)
    }
}
