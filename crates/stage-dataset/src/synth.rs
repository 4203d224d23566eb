//! Synthetic JPEG images for tests and the benchmark: gradients, a few
//! rectangles and seeded noise (the noise amplitude sets the file size),
//! and cheap unique variants made by inserting a comment segment, which
//! changes the bytes and the hash but not the pixels.

/// A `width` x `height` RGB JPEG; `noise` (0..=255) is the amplitude of the
/// per-pixel noise that makes the file larger.
pub fn synthetic_jpeg(
    width: u16,
    height: u16,
    seed: u64,
    noise: u8,
    quality: u8,
) -> Result<Vec<u8>, jpeg_encoder::EncodingError> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut pixels = vec![0u8; w * h * 3];
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let rect = |k: u64| -> (usize, usize, usize, usize) {
        let a = (seed.wrapping_add(k).wrapping_mul(0x2545_f491_4f6c_dd1d) >> 20) as usize;
        let (x, y) = (a % w.max(1), (a >> 16) % h.max(1));
        (x, y, (x + w / 5).min(w), (y + h / 3).min(h))
    };
    let rects = [rect(1), rect(2), rect(3)];
    for y in 0..h {
        for x in 0..w {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let jitter = if noise == 0 {
                0
            } else {
                (state % (u64::from(noise) + 1)) as i32 - i32::from(noise) / 2
            };
            let inside = rects
                .iter()
                .position(|&(x0, y0, x1, y1)| x >= x0 && x < x1 && y >= y0 && y < y1);
            let base = match inside {
                Some(i) => [60 + 60 * i as i32, 200 - 50 * i as i32, 90],
                None => [
                    (x * 255 / w.max(1)) as i32,
                    (y * 255 / h.max(1)) as i32,
                    ((x + y + seed as usize) % 256) as i32,
                ],
            };
            let at = (y * w + x) * 3;
            for c in 0..3 {
                pixels[at + c] = (base[c] + jitter).clamp(0, 255) as u8;
            }
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality).encode(
        &pixels,
        width,
        height,
        jpeg_encoder::ColorType::Rgb,
    )?;
    Ok(out)
}

/// `jpeg` with a comment segment holding `text` right after the SOI marker.
pub fn with_comment(jpeg: &[u8], text: &str) -> Vec<u8> {
    let payload = &text.as_bytes()[..text.len().min(60_000)];
    let mut out = Vec::with_capacity(jpeg.len() + payload.len() + 4);
    out.extend_from_slice(&jpeg[..2.min(jpeg.len())]);
    out.extend_from_slice(&[0xff, 0xfe]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2.min(jpeg.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_header::{ImageFormat, ImageInfo, image_info};

    #[test]
    fn images_are_valid_jpegs_and_variants_differ() {
        let jpeg = synthetic_jpeg(64, 48, 1, 40, 85).unwrap();
        let expected = ImageInfo {
            format: ImageFormat::Jpeg,
            width: 64,
            height: 48,
        };
        assert_eq!(image_info(&jpeg).unwrap(), expected);
        let variant = with_comment(&jpeg, "7");
        assert_eq!(variant.len(), jpeg.len() + 5);
        assert_eq!(image_info(&variant).unwrap(), expected);
        assert_ne!(variant, with_comment(&jpeg, "8"));
    }
}
