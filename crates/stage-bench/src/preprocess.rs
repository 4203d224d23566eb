//! Turning an encoded image into the model's input tensor: decode, resize
//! (bilinear, half-pixel centres) to the input's height and width, then
//! normalize `(pixel - mean) / std` for float inputs or quantize with the
//! input tensor's scale and zero point for int8/uint8 inputs.

use crate::model_io::{InputKind, InputSpec};

/// Why an image could not become an input.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    #[error("cannot decode image {image}: {detail}")]
    Decode { image: String, detail: String },
}

/// The input tensor's bytes for one image, in the model's input dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum InputData {
    F32(Vec<f32>),
    U8(Vec<u8>),
    I8(Vec<i8>),
}

impl InputData {
    /// Raw little-endian bytes (what a `.bin` of inputs holds).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            InputData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            InputData::U8(v) => v.clone(),
            InputData::I8(v) => v.iter().map(|x| *x as u8).collect(),
        }
    }
}

/// How pixels map to real input values: `(pixel - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    pub mean: f32,
    pub std: f32,
}

/// Decodes and resizes to `width`×`height` RGB, 8 bits per channel.
pub fn decode_resized(
    encoded: &[u8],
    name: &str,
    width: usize,
    height: usize,
) -> Result<Vec<u8>, PreprocessError> {
    let decoded = image::load_from_memory(encoded)
        .map_err(|e| PreprocessError::Decode {
            image: name.to_owned(),
            detail: e.to_string(),
        })?
        .to_rgb8();
    let (src_w, src_h) = (decoded.width() as usize, decoded.height() as usize);
    Ok(resize_bilinear(
        decoded.as_raw(),
        src_w,
        src_h,
        width,
        height,
    ))
}

/// Bilinear resize of packed RGB8 with half-pixel centres (no antialiasing).
pub fn resize_bilinear(
    src: &[u8],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<u8> {
    if src_w == dst_w && src_h == dst_h {
        return src.to_vec();
    }
    let axis = |dst: usize, src_len: usize| -> Vec<(usize, usize, f32)> {
        let scale = src_len as f32 / dst as f32;
        (0..dst)
            .map(|i| {
                let pos = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
                let lo = (pos.floor() as usize).min(src_len - 1);
                let hi = (lo + 1).min(src_len - 1);
                (lo, hi, pos - lo as f32)
            })
            .collect()
    };
    let xs = axis(dst_w, src_w);
    let ys = axis(dst_h, src_h);
    let mut out = vec![0u8; dst_w * dst_h * 3];
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let p = |yy: usize, xx: usize| f32::from(src[(yy * src_w + xx) * 3 + c]);
                let top = p(y0, x0) + (p(y0, x1) - p(y0, x0)) * fx;
                let bottom = p(y1, x0) + (p(y1, x1) - p(y1, x0)) * fx;
                let value = top + (bottom - top) * fy;
                out[(y * dst_w + x) * 3 + c] = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Converts resized RGB8 pixels to the model input.
pub fn to_input(pixels: &[u8], input: &InputSpec, norm: Normalization) -> InputData {
    let real = |p: u8| (f32::from(p) - norm.mean) / norm.std;
    match input.kind {
        InputKind::Float32 => InputData::F32(pixels.iter().map(|&p| real(p)).collect()),
        InputKind::UInt8 { scale, zero_point } => InputData::U8(
            pixels
                .iter()
                .map(|&p| ((real(p) / scale).round() + zero_point as f32).clamp(0.0, 255.0) as u8)
                .collect(),
        ),
        InputKind::Int8 { scale, zero_point } => InputData::I8(
            pixels
                .iter()
                .map(|&p| {
                    ((real(p) / scale).round() + zero_point as f32).clamp(-128.0, 127.0) as i8
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_averages_neighbours() {
        // 2x1 image: black and white; to 4x1 with half-pixel centres.
        let src = [0, 0, 0, 255, 255, 255];
        let out = resize_bilinear(&src, 2, 1, 4, 1);
        let reds: Vec<u8> = out.chunks(3).map(|p| p[0]).collect();
        assert_eq!(reds, vec![0, 64, 191, 255]);
        assert_eq!(resize_bilinear(&src, 2, 1, 2, 1), src.to_vec());
    }

    #[test]
    fn quantizes_with_scale_and_zero_point() {
        let spec = |kind| InputSpec {
            name: "x".into(),
            shape: vec![1, 1, 1, 3],
            kind,
        };
        let norm = Normalization {
            mean: 128.0,
            std: 128.0,
        };
        let pixels = [0, 128, 255];
        // TOCO-style uint8 input: scale 1/128, zero point 128.
        let u8_input = to_input(
            &pixels,
            &spec(InputKind::UInt8 {
                scale: 1.0 / 128.0,
                zero_point: 128,
            }),
            norm,
        );
        assert_eq!(u8_input, InputData::U8(vec![0, 128, 255]));
        let i8_input = to_input(
            &pixels,
            &spec(InputKind::Int8 {
                scale: 1.0 / 128.0,
                zero_point: 0,
            }),
            norm,
        );
        assert_eq!(i8_input, InputData::I8(vec![-128, 0, 127]));
        let norm = Normalization {
            mean: 127.5,
            std: 127.5,
        };
        let f = to_input(&pixels, &spec(InputKind::Float32), norm);
        assert_eq!(f, InputData::F32(vec![-1.0, 0.5 / 127.5, 1.0]));
    }
}
