//! How each backend trains: which script or tool runs, with which argv, in
//! which executor. The TF1 backend only exists as a Docker image, so its
//! argv is built here and unit-tested without an engine.

use std::path::{Path, PathBuf};

use crate::params::{Backend, Init, ModelKind, QuantScheme, TrainParams};

/// Scripts, relative to the workspace root.
pub const VALIDATE_SCRIPT: &str = "crates/stage-train/python/validate_config.py";
pub const TRAIN_TF2_SCRIPT: &str = "crates/stage-train/python/train_tf2.py";
pub const TRAIN_KERAS_SCRIPT: &str = "crates/stage-train/python/train_keras.py";
/// Where the OD API lives inside the `odapi-tf1` image.
pub const TF1_OBJECT_DETECTION: &str = "/opt/models/research/object_detection";

/// The Docker image (`dockerfiles/<name>.Dockerfile`) a backend runs in.
pub fn image(backend: Backend) -> &'static str {
    match backend {
        // The Keras trainer needs TF2 and tensorflow-model-optimization.
        Backend::OdapiTf2 | Backend::Keras => "odapi-tf2",
        Backend::OdapiTf1 => "odapi-tf1",
    }
}

/// Which trainer actually runs for these params.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// TF2 OD API `train_loop`, float.
    OdapiTf2,
    /// The Keras SSDLite, float or with tfmot fake-quantization (the TF2
    /// OD API ignores graph_rewriter, so QAT under `odapi-tf2` runs this).
    Keras,
    /// TF1 OD API `model_main.py` (graph_rewriter QAT when configured).
    OdapiTf1,
}

/// Picks the trainer, refusing combinations that would silently lose QAT.
pub fn plan(params: &TrainParams, docker: bool) -> Result<Plan, String> {
    let plan = trainer_for(params, docker)?;
    if params.init == Init::Teacher {
        if plan != Plan::Keras {
            return Err(format!(
                "`init: teacher` loads the teacher into the Keras SSDLite; use `backend: keras` \
                 (backend `{}` starts from `fine_tune_checkpoint`)",
                params.backend.as_str()
            ));
        }
        if params.depth_multiplier != 1.0 || params.min_depth != 16 {
            return Err(format!(
                "`init: teacher` needs the teacher's architecture: `depth_multiplier: 1.0` and \
                 `min_depth: 16` (got {} and {}); or use `init: scratch`",
                params.depth_multiplier, params.min_depth
            ));
        }
    }
    if params.init == Init::Checkpoint && plan != Plan::Keras {
        return Err(format!(
            "`init: checkpoint` fine-tunes another `keras` train stage's checkpoint; use \
             `backend: keras` (backend `{}` starts from `fine_tune_checkpoint`)",
            params.backend.as_str()
        ));
    }
    if let Some(q) = &params.quantization
        && plan != Plan::Keras
    {
        if q.scheme == QuantScheme::PerChannel && plan == Plan::OdapiTf1 {
            return Err(
                "the TF1 OD API's graph_rewriter fake-quantizes per tensor (for TOCO); set \
                 `quantization.scheme: per_tensor`, or train per-channel with `backend: keras`"
                    .to_owned(),
            );
        }
        if q.range_warmup_steps > 0 || q.freeze_batch_norm_after.is_some() {
            return Err(
                "`quantization.range_warmup_steps` and `freeze_batch_norm_after` are settings \
                 of the Keras trainer; use `backend: keras` or remove them"
                    .to_owned(),
            );
        }
    }
    Ok(plan)
}

fn trainer_for(params: &TrainParams, docker: bool) -> Result<Plan, String> {
    match (params.backend, params.quantization.is_some()) {
        (Backend::OdapiTf1, _) if !docker => Err(
            "backend `odapi-tf1` (TF 1.15) runs only in its Docker image; run the pipeline with \
             `--executor docker`, or use `backend: odapi-tf2` for the local executor"
                .to_owned(),
        ),
        (Backend::OdapiTf1, _) => Ok(Plan::OdapiTf1),
        (Backend::OdapiTf2, false) => Ok(Plan::OdapiTf2),
        (Backend::OdapiTf2, true) if params.model != ModelKind::SsdliteMobilenetV2 => Err(format!(
            "quantization-aware training under `odapi-tf2` is provided for `ssdlite_mobilenet_v2` \
             only (the TF2 OD API ignores graph_rewriter); model `{}` needs `backend: odapi-tf1` \
             (Docker), or drop `quantization` and quantize after training",
            params.model.as_str()
        )),
        (Backend::OdapiTf2, true) if params.fine_tune_checkpoint.is_some() => Err(
            "quantization-aware training under `odapi-tf2` trains the Keras SSDLite, which cannot \
             load an OD API `fine_tune_checkpoint`; remove it or use `backend: odapi-tf1`"
                .to_owned(),
        ),
        (Backend::OdapiTf2, true) => Ok(Plan::Keras),
        (Backend::Keras, _) => keras_fits(params).map(|()| Plan::Keras),
    }
}

/// Refuses params the Keras SSDLite trainer cannot honour.
fn keras_fits(params: &TrainParams) -> Result<(), String> {
    if params.model != ModelKind::SsdliteMobilenetV2 {
        return Err(format!(
            "backend `keras` builds `ssdlite_mobilenet_v2` only; model `{}` needs an OD API backend",
            params.model.as_str()
        ));
    }
    if params.fine_tune_checkpoint.is_some() {
        return Err(
            "backend `keras` cannot load an OD API `fine_tune_checkpoint`; remove it \
             (`init: teacher` starts from the pretrained teacher)"
                .to_owned(),
        );
    }
    Ok(())
}

/// `model_main.py` argv inside the TF1 image (the seed's training command).
pub fn tf1_train_argv(config: &Path, model_dir: &Path, steps: u32) -> Vec<String> {
    vec![
        "python".to_owned(),
        format!("{TF1_OBJECT_DETECTION}/model_main.py"),
        format!("--pipeline_config_path={}", config.display()),
        format!("--model_dir={}", model_dir.display()),
        format!("--num_train_steps={steps}"),
        "--sample_1_of_n_eval_examples=1".to_owned(),
        "--alsologtostderr".to_owned(),
    ]
}

/// The TF1 checkpoint prefix `model_main.py` writes for the last step.
pub fn tf1_checkpoint_prefix(steps: u32) -> PathBuf {
    PathBuf::from(format!("model.ckpt-{steps}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use stage_test_support::workspace_root;

    use super::*;
    use crate::params::Quantization;

    fn params(json: serde_json::Value) -> TrainParams {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn tf1_argv_is_the_seeds_model_main_call() {
        let argv = tf1_train_argv(
            Path::new("/w/out/checkpoint/pipeline.config"),
            Path::new("/w/out/checkpoint"),
            50000,
        );
        assert_eq!(
            argv,
            [
                "python",
                "/opt/models/research/object_detection/model_main.py",
                "--pipeline_config_path=/w/out/checkpoint/pipeline.config",
                "--model_dir=/w/out/checkpoint",
                "--num_train_steps=50000",
                "--sample_1_of_n_eval_examples=1",
                "--alsologtostderr",
            ]
        );
        assert_eq!(tf1_checkpoint_prefix(50000), Path::new("model.ckpt-50000"));
    }

    #[test]
    fn plans_never_drop_quantization_silently() {
        let float = params(serde_json::json!({}));
        assert_eq!(plan(&float, false), Ok(Plan::OdapiTf2));
        let mut qat = float.clone();
        qat.quantization = Some(Quantization {
            delay: 0,
            weight_bits: 8,
            activation_bits: 8,
            scheme: QuantScheme::PerChannel,
            range_warmup_steps: 0,
            freeze_batch_norm_after: None,
        });
        assert_eq!(plan(&qat, false), Ok(Plan::Keras));
        qat.model = ModelKind::SsdMobilenetV2;
        let err = plan(&qat, false).unwrap_err();
        assert!(err.contains("ignores graph_rewriter"), "{err}");
        let tf1 = params(serde_json::json!({"backend": "odapi-tf1"}));
        assert!(plan(&tf1, false).unwrap_err().contains("--executor docker"));
        assert_eq!(plan(&tf1, true), Ok(Plan::OdapiTf1));
        assert_eq!(image(Backend::OdapiTf1), "odapi-tf1");
    }

    #[test]
    fn checkpoint_starts_and_qat_settings_belong_to_the_keras_trainer() {
        let fine_tune = params(serde_json::json!({
            "backend": "keras", "init": "checkpoint",
            "quantization": {"range_warmup_steps": 50, "freeze_batch_norm_after": 0}}));
        assert_eq!(plan(&fine_tune, false), Ok(Plan::Keras));
        let odapi = params(serde_json::json!({"init": "checkpoint"}));
        let err = plan(&odapi, false).unwrap_err();
        assert!(
            err.contains("`init: checkpoint`") && err.contains("backend: keras"),
            "{err}"
        );
        let tf1 =
            params(serde_json::json!({"backend": "odapi-tf1", "quantization": {"delay": 10}}));
        let err = plan(&tf1, true).unwrap_err();
        assert!(err.contains("scheme: per_tensor"), "{err}");
        let tf1 = params(serde_json::json!({"backend": "odapi-tf1",
            "quantization": {"scheme": "per_tensor", "range_warmup_steps": 5}}));
        let err = plan(&tf1, true).unwrap_err();
        assert!(err.contains("settings of the Keras trainer"), "{err}");
        let tf1 = params(serde_json::json!({"backend": "odapi-tf1",
            "quantization": {"scheme": "per_tensor"}}));
        assert_eq!(plan(&tf1, true), Ok(Plan::OdapiTf1));
    }

    #[test]
    fn per_channel_training_is_8_bit() {
        let four = params(serde_json::json!({"backend": "keras",
            "quantization": {"weight_bits": 4}}));
        let err = four.check().unwrap_err();
        assert!(err.contains("scheme: per_tensor"), "{err}");
        let four = params(serde_json::json!({"backend": "keras",
            "quantization": {"weight_bits": 4, "scheme": "per_tensor"}}));
        assert_eq!(four.check(), Ok(()));
    }

    #[test]
    fn the_keras_backend_trains_float_or_qat_and_alone_starts_from_the_teacher() {
        let keras = params(serde_json::json!({"backend": "keras", "init": "teacher"}));
        assert_eq!(plan(&keras, false), Ok(Plan::Keras));
        assert_eq!(image(Backend::Keras), "odapi-tf2");
        let narrow = params(
            serde_json::json!({"backend": "keras", "init": "teacher", "depth_multiplier": 0.5}),
        );
        let err = plan(&narrow, false).unwrap_err();
        assert!(
            err.contains("depth_multiplier: 1.0") && err.contains("0.5"),
            "{err}"
        );
        let odapi = params(serde_json::json!({"init": "teacher"}));
        let err = plan(&odapi, false).unwrap_err();
        assert!(
            err.contains("backend: keras") && err.contains("odapi-tf2"),
            "{err}"
        );
        let ssd = params(serde_json::json!({"backend": "keras", "model": "ssd_mobilenet_v2"}));
        assert!(
            plan(&ssd, false)
                .unwrap_err()
                .contains("`ssdlite_mobilenet_v2` only")
        );
        let zoo =
            params(serde_json::json!({"backend": "keras", "fine_tune_checkpoint": "x/ckpt-1"}));
        assert!(
            plan(&zoo, true)
                .unwrap_err()
                .contains("fine_tune_checkpoint")
        );
    }

    /// `name==version` pins of a requirements text (lock or Dockerfile).
    fn pins(text: &str) -> Vec<String> {
        let mut out: Vec<String> = text
            .split(|c: char| c.is_whitespace() || c == '\\')
            .filter(|w| w.contains("==") && !w.starts_with("--"))
            .map(|w| w.to_ascii_lowercase().replace('_', "-"))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_tf2_image_pins_exactly_the_lock() {
        let root = workspace_root();
        let lock = std::fs::read_to_string(root.join("crates/provision/python/requirements.lock"))
            .unwrap();
        let dockerfile =
            std::fs::read_to_string(root.join("dockerfiles/odapi-tf2.Dockerfile")).unwrap();
        let expected = pins(&lock);
        assert!(expected.contains(&"tensorflow-cpu==2.15.1".to_owned()));
        assert_eq!(
            pins(&dockerfile),
            expected,
            "regenerate the pins of dockerfiles/odapi-tf2.Dockerfile from the lock"
        );
    }

    #[test]
    fn docker_argv_runs_the_tf1_trainer_in_the_content_tagged_image() {
        let settings = stage_api::DockerSettings {
            gpus: true,
            user: Some("1000:1000".into()),
            image_prefix: "edgepipe".into(),
            ..Default::default()
        };
        let image =
            stage_api::dockerfile_image(&workspace_root(), image(Backend::OdapiTf1), &settings)
                .unwrap();
        assert!(
            image.tag.starts_with("edgepipe/odapi-tf1:"),
            "{}",
            image.tag
        );
        assert_eq!(image.tag.len(), "edgepipe/odapi-tf1:".len() + 16);
        let run = stage_api::DockerRun {
            settings: &settings,
            image: &image,
            workdir: Path::new("/w/scratch"),
            env: vec![],
        };
        let argv: Vec<String> = run
            .command(tf1_train_argv(
                Path::new("/w/out/checkpoint/pipeline.config"),
                Path::new("/w/out/checkpoint"),
                10,
            ))
            .argv()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "docker",
                "run",
                "--rm",
                "--init",
                "-v",
                "/w/scratch:/w/scratch",
                "-w",
                "/w/scratch",
                "--user",
                "1000:1000",
                "--gpus",
                "all",
                image.tag.as_str(),
                "python",
                "/opt/models/research/object_detection/model_main.py",
                "--pipeline_config_path=/w/out/checkpoint/pipeline.config",
                "--model_dir=/w/out/checkpoint",
                "--num_train_steps=10",
                "--sample_1_of_n_eval_examples=1",
                "--alsologtostderr",
            ]
        );
        let tf2 = stage_api::dockerfile_image(
            &workspace_root(),
            super::image(Backend::OdapiTf2),
            &settings,
        )
        .unwrap();
        assert!(tf2.tag.starts_with("edgepipe/odapi-tf2:"));
        assert_ne!(tf2.tag, image.tag);
    }
}
