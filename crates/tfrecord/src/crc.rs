//! The masked CRC-32C TFRecord stores for the length and the payload.
//!
//! Masking (rotate right by 15 bits, add a constant) keeps a CRC of data
//! that itself contains CRCs from being degenerate; the constant and the
//! rotation are fixed by TensorFlow's record format. The CRC itself comes
//! from the `crc32c` crate, which uses the SSE4.2 `crc32` instruction where
//! the CPU has it.

const MASK_DELTA: u32 = 0xa282_ead8;

/// The masked CRC-32C (Castagnoli) of `data`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    mask(crc32c::crc32c(data))
}

pub(crate) fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value of "123456789" (RFC 3720, appendix B.4).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn masking_rotates_and_adds_the_delta() {
        assert_eq!(mask(0), MASK_DELTA);
        assert_eq!(mask(1 << 15), 1u32.wrapping_add(MASK_DELTA));
        assert_eq!(masked_crc32c(b""), MASK_DELTA);
    }
}
