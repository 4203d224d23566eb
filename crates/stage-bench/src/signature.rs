//! The order in which LiteRT's default signature lists a model's outputs.
//!
//! `CompiledModel::run` takes output buffers in that order, and for SSD
//! models every output reports an empty shape, so the order cannot be
//! inferred from shapes: a buffer meant for the 1-element count that
//! receives the 10-element scores overflows. This asks the runtime for each
//! output's tensor name (the safe `litert` API does not expose names), which
//! [`crate::model_io`] then matches against the flatbuffer.

use std::ffi::{CStr, CString};
use std::path::Path;

use litert_sys as sys;

/// Why the signature could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("LiteRT could not {what} for {path} (status {status})")]
    Status {
        what: &'static str,
        path: String,
        status: i64,
    },
    #[error("{0} is not a valid path for LiteRT")]
    Path(String),
}

/// Tensor names of the default signature's outputs, in runtime order.
pub fn output_tensor_names(path: &Path) -> Result<Vec<String>, SignatureError> {
    let shown = path.display().to_string();
    let c_path = path
        .to_str()
        .and_then(|p| CString::new(p).ok())
        .ok_or_else(|| SignatureError::Path(shown.clone()))?;
    let check = |status: sys::LiteRtStatus, what: &'static str| -> Result<(), SignatureError> {
        if status == sys::kLiteRtStatusOk {
            Ok(())
        } else {
            Err(SignatureError::Status {
                what,
                path: shown.clone(),
                status: i64::from(status),
            })
        }
    };
    let mut model: sys::LiteRtModel = std::ptr::null_mut();
    // SAFETY: a valid NUL-terminated path and an out pointer; on success we
    // own `model` and destroy it below.
    check(
        unsafe { sys::LiteRtCreateModelFromFile(c_path.as_ptr(), &mut model) },
        "load the model",
    )?;
    let names = (|| {
        let mut signature: sys::LiteRtSignature = std::ptr::null_mut();
        // SAFETY: `model` is a live model handle; the signature it returns
        // is owned by the model and used only while the model lives.
        check(
            unsafe { sys::LiteRtGetModelSignature(model, 0, &mut signature) },
            "get the default signature",
        )?;
        let mut count: sys::LiteRtParamIndex = 0;
        // SAFETY: as above.
        check(
            unsafe { sys::LiteRtGetNumSignatureOutputs(signature, &mut count) },
            "count the outputs",
        )?;
        let mut names = Vec::with_capacity(count);
        for index in 0..count {
            let mut tensor: sys::LiteRtTensor = std::ptr::null_mut();
            // SAFETY: index < count; the tensor is owned by the model.
            check(
                unsafe {
                    sys::LiteRtGetSignatureOutputTensorByIndex(signature, index, &mut tensor)
                },
                "get an output tensor",
            )?;
            let mut name: *const std::os::raw::c_char = std::ptr::null();
            // SAFETY: `tensor` is live; the name is a NUL-terminated string
            // owned by the model, copied before the model is destroyed.
            check(
                unsafe { sys::LiteRtGetTensorName(tensor, &mut name) },
                "read an output name",
            )?;
            let text = if name.is_null() {
                String::new()
            } else {
                // SAFETY: non-null, NUL-terminated, alive while `model` is.
                unsafe { CStr::from_ptr(name) }
                    .to_string_lossy()
                    .into_owned()
            };
            names.push(text);
        }
        Ok(names)
    })();
    // SAFETY: created above, destroyed exactly once, nothing borrowed from it survives.
    unsafe { sys::LiteRtDestroyModel(model) };
    names
}
