//! Image format and size from the JPEG or PNG header, without decoding
//! pixels: the JPEG start-of-frame segment, the PNG `IHDR` chunk. Also a
//! cheap completeness check (the JPEG end-of-image marker, the PNG `IEND`
//! chunk) that catches truncated files.

/// Encodings the records may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
}

impl ImageFormat {
    /// The `image/format` value the Object Detection API expects.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
        }
    }
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// Why the bytes are not a usable image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("neither JPEG nor PNG (starts with {0})")]
    UnknownFormat(String),
    #[error("JPEG header is cut off at byte {0}")]
    JpegTruncatedHeader(usize),
    #[error("JPEG has a bad marker at byte {0}")]
    JpegBadMarker(usize),
    #[error("JPEG has no frame header before its image data")]
    JpegNoFrame,
    #[error("JPEG is truncated: no end-of-image marker")]
    JpegNoEnd,
    #[error("PNG header is cut off")]
    PngTruncatedHeader,
    #[error("PNG is truncated: no IEND chunk at the end")]
    PngNoEnd,
    #[error("image header says {width}x{height}")]
    ZeroSize { width: u32, height: u32 },
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
const PNG_IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82];

/// Reads the format and size from an encoded image.
pub fn image_info(bytes: &[u8]) -> Result<ImageInfo, HeaderError> {
    let info = if bytes.starts_with(&[0xff, 0xd8]) {
        jpeg_info(bytes)?
    } else if bytes.starts_with(&PNG_SIGNATURE) {
        png_info(bytes)?
    } else {
        let start: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(HeaderError::UnknownFormat(if start.is_empty() {
            "nothing".into()
        } else {
            start.join(" ")
        }));
    };
    if info.width == 0 || info.height == 0 {
        return Err(HeaderError::ZeroSize {
            width: info.width,
            height: info.height,
        });
    }
    Ok(info)
}

fn jpeg_info(bytes: &[u8]) -> Result<ImageInfo, HeaderError> {
    let mut at = 2;
    let (width, height) = loop {
        let Some(&first) = bytes.get(at) else {
            return Err(HeaderError::JpegTruncatedHeader(at));
        };
        if first != 0xff {
            return Err(HeaderError::JpegBadMarker(at));
        }
        // Any number of 0xff fill bytes may precede a marker.
        while bytes.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        let marker = *bytes
            .get(at + 1)
            .ok_or(HeaderError::JpegTruncatedHeader(at + 1))?;
        match marker {
            0x01 | 0xd0..=0xd7 => {
                at += 2;
                continue;
            }
            0xd9 | 0xda => return Err(HeaderError::JpegNoFrame),
            0x00 | 0xd8 => return Err(HeaderError::JpegBadMarker(at)),
            _ => {}
        }
        let length = usize::from(u16::from_be_bytes([
            *bytes
                .get(at + 2)
                .ok_or(HeaderError::JpegTruncatedHeader(at + 2))?,
            *bytes
                .get(at + 3)
                .ok_or(HeaderError::JpegTruncatedHeader(at + 3))?,
        ]));
        if length < 2 {
            return Err(HeaderError::JpegBadMarker(at));
        }
        let is_frame = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
        if is_frame {
            let segment = bytes
                .get(at + 4..at + 9)
                .ok_or(HeaderError::JpegTruncatedHeader(at + 4))?;
            let height = u16::from_be_bytes([segment[1], segment[2]]);
            let width = u16::from_be_bytes([segment[3], segment[4]]);
            break (u32::from(width), u32::from(height));
        }
        at += 2 + length;
    };
    let end = bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    if !bytes[..end].ends_with(&[0xff, 0xd9]) {
        return Err(HeaderError::JpegNoEnd);
    }
    Ok(ImageInfo {
        format: ImageFormat::Jpeg,
        width,
        height,
    })
}

fn png_info(bytes: &[u8]) -> Result<ImageInfo, HeaderError> {
    let header = bytes.get(8..24).ok_or(HeaderError::PngTruncatedHeader)?;
    if &header[4..8] != b"IHDR" {
        return Err(HeaderError::PngTruncatedHeader);
    }
    let width = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    let height = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
    if !bytes.ends_with(&PNG_IEND) {
        return Err(HeaderError::PngNoEnd);
    }
    Ok(ImageInfo {
        format: ImageFormat::Png,
        width,
        height,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal JPEG shell: SOI, an APP0 segment, SOF0 with the size, EOI.
    pub(crate) fn jpeg_shell(width: u16, height: u16) -> Vec<u8> {
        let mut b = vec![
            0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0xaa, 0xbb, 0xff, 0xff, 0xc0, 0x00, 0x0b, 0x08,
        ];
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&[
            0x01, 0x01, 0x11, 0x00, 0xff, 0xda, 0x00, 0x02, 0x12, 0x34, 0xff, 0xd9,
        ]);
        b
    }

    fn png_shell(width: u32, height: u32) -> Vec<u8> {
        let mut b = PNG_SIGNATURE.to_vec();
        b.extend_from_slice(&[0, 0, 0, 13]);
        b.extend_from_slice(b"IHDR");
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&[8, 2, 0, 0, 0, 1, 2, 3, 4]);
        b.extend_from_slice(&PNG_IEND);
        b
    }

    #[test]
    fn reads_jpeg_size_from_the_frame_header() {
        let info = image_info(&jpeg_shell(640, 480)).unwrap();
        assert_eq!(
            info,
            ImageInfo {
                format: ImageFormat::Jpeg,
                width: 640,
                height: 480
            }
        );
    }

    #[test]
    fn reads_png_size_from_ihdr() {
        let info = image_info(&png_shell(1920, 1080)).unwrap();
        assert_eq!(
            info,
            ImageInfo {
                format: ImageFormat::Png,
                width: 1920,
                height: 1080
            }
        );
    }

    #[test]
    fn reads_a_real_encoder_output() {
        let mut out = Vec::new();
        let encoder = jpeg_encoder::Encoder::new(&mut out, 80);
        encoder
            .encode(&[128u8; 33 * 17 * 3], 33, 17, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert_eq!(
            image_info(&out).unwrap(),
            ImageInfo {
                format: ImageFormat::Jpeg,
                width: 33,
                height: 17
            }
        );
    }

    #[test]
    fn broken_images_are_named_not_panicked_on() {
        let jpeg = jpeg_shell(640, 480);
        assert_eq!(
            image_info(&jpeg[..jpeg.len() - 2]),
            Err(HeaderError::JpegNoEnd)
        );
        assert!(matches!(
            image_info(&jpeg[..10]),
            Err(HeaderError::JpegTruncatedHeader(_))
        ));
        assert_eq!(
            image_info(&jpeg_shell(0, 480)),
            Err(HeaderError::ZeroSize {
                width: 0,
                height: 480
            })
        );
        assert_eq!(
            image_info(b"GIF89a"),
            Err(HeaderError::UnknownFormat("47 49 46 38".into()))
        );
        assert_eq!(
            image_info(b""),
            Err(HeaderError::UnknownFormat("nothing".into()))
        );
        let png = png_shell(4, 4);
        assert_eq!(
            image_info(&png[..png.len() - 1]),
            Err(HeaderError::PngNoEnd)
        );
        assert_eq!(image_info(&png[..20]), Err(HeaderError::PngTruncatedHeader));
        for cut in 0..jpeg.len() {
            let _ = image_info(&jpeg[..cut]);
        }
    }
}
