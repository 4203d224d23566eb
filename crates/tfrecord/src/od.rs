//! The TensorFlow Object Detection API's record layout: its feature keys
//! (exactly as `TfExampleDecoder` reads them) and a typed view of one
//! detection example, built into and parsed out of a `tf.train.Example`.

use crate::error::FeatureError;
use crate::example::{Example, Feature};

pub const IMAGE_ENCODED: &str = "image/encoded";
pub const IMAGE_FORMAT: &str = "image/format";
pub const IMAGE_FILENAME: &str = "image/filename";
pub const IMAGE_SOURCE_ID: &str = "image/source_id";
pub const IMAGE_KEY_SHA256: &str = "image/key/sha256";
pub const IMAGE_HEIGHT: &str = "image/height";
pub const IMAGE_WIDTH: &str = "image/width";
pub const BBOX_XMIN: &str = "image/object/bbox/xmin";
pub const BBOX_XMAX: &str = "image/object/bbox/xmax";
pub const BBOX_YMIN: &str = "image/object/bbox/ymin";
pub const BBOX_YMAX: &str = "image/object/bbox/ymax";
pub const CLASS_LABEL: &str = "image/object/class/label";
pub const CLASS_TEXT: &str = "image/object/class/text";
pub const OBJECT_AREA: &str = "image/object/area";
pub const OBJECT_IS_CROWD: &str = "image/object/is_crowd";
pub const OBJECT_DIFFICULT: &str = "image/object/difficult";

/// One image with its boxes, as the Object Detection API stores it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DetectionExample {
    /// The encoded image file (JPEG or PNG bytes).
    pub encoded: Vec<u8>,
    /// `jpeg` or `png`.
    pub format: String,
    pub filename: String,
    pub source_id: String,
    /// Hex SHA-256 of `encoded`.
    pub sha256: String,
    pub height: i64,
    pub width: i64,
    pub objects: Vec<DetectionObject>,
}

/// One box; coordinates are normalized to `[0, 1]` by the image size.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DetectionObject {
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
    /// Class id from the label map (ids start at 1).
    pub label: i64,
    pub text: String,
    /// Box area in pixels.
    pub area: f32,
    pub is_crowd: bool,
    pub difficult: bool,
}

impl DetectionExample {
    /// Builds the `tf.train.Example` with every key above.
    pub fn to_example(&self) -> Example {
        let column =
            |f: fn(&DetectionObject) -> f32| self.objects.iter().map(f).collect::<Vec<_>>();
        let flags = |f: fn(&DetectionObject) -> bool| {
            self.objects.iter().map(|o| i64::from(f(o))).collect()
        };
        Example::new()
            .with(IMAGE_ENCODED, Feature::bytes_one(self.encoded.clone()))
            .with(IMAGE_FORMAT, Feature::bytes_one(self.format.as_bytes()))
            .with(IMAGE_FILENAME, Feature::bytes_one(self.filename.as_bytes()))
            .with(
                IMAGE_SOURCE_ID,
                Feature::bytes_one(self.source_id.as_bytes()),
            )
            .with(IMAGE_KEY_SHA256, Feature::bytes_one(self.sha256.as_bytes()))
            .with(IMAGE_HEIGHT, Feature::int64_one(self.height))
            .with(IMAGE_WIDTH, Feature::int64_one(self.width))
            .with(BBOX_XMIN, Feature::floats(column(|o| o.xmin)))
            .with(BBOX_XMAX, Feature::floats(column(|o| o.xmax)))
            .with(BBOX_YMIN, Feature::floats(column(|o| o.ymin)))
            .with(BBOX_YMAX, Feature::floats(column(|o| o.ymax)))
            .with(
                CLASS_LABEL,
                Feature::int64s(self.objects.iter().map(|o| o.label).collect()),
            )
            .with(
                CLASS_TEXT,
                Feature::bytes(self.objects.iter().map(|o| o.text.as_bytes())),
            )
            .with(OBJECT_AREA, Feature::floats(column(|o| o.area)))
            .with(OBJECT_IS_CROWD, Feature::int64s(flags(|o| o.is_crowd)))
            .with(OBJECT_DIFFICULT, Feature::int64s(flags(|o| o.difficult)))
    }

    /// Like [`to_example`](Self::to_example) but moves the image bytes
    /// instead of copying them.
    pub fn into_example(mut self) -> Example {
        let encoded = std::mem::take(&mut self.encoded);
        let mut example = self.to_example();
        example.insert(IMAGE_ENCODED, Feature::bytes_one(encoded));
        example
    }

    /// Reads a detection example; `area`, `is_crowd` and `difficult` may be
    /// absent, every other key must be present and all per-object lists
    /// must have one value per box.
    pub fn from_example(example: &Example) -> Result<Self, FeatureError> {
        let text = |key: &str| -> Result<String, FeatureError> {
            Ok(String::from_utf8_lossy(example.bytes_scalar(key)?).into_owned())
        };
        let xmin = example.float_list(BBOX_XMIN)?;
        let count = xmin.len();
        let sized = |key: &str, found: usize| -> Result<(), FeatureError> {
            if found == count {
                Ok(())
            } else {
                Err(FeatureError::LengthMismatch {
                    key: key.to_owned(),
                    found,
                    expected: count,
                })
            }
        };
        let floats = |key: &str| -> Result<&[f32], FeatureError> {
            let values = example.float_list(key)?;
            sized(key, values.len()).map(|()| values)
        };
        let optional_floats = |key: &str| -> Result<Vec<f32>, FeatureError> {
            match example.float_list(key) {
                Ok(values) => sized(key, values.len()).map(|()| values.to_vec()),
                Err(FeatureError::Missing { .. }) => Ok(vec![0.0; count]),
                Err(e) => Err(e),
            }
        };
        let optional_flags = |key: &str| -> Result<Vec<bool>, FeatureError> {
            match example.int64_list(key) {
                Ok(values) => {
                    sized(key, values.len()).map(|()| values.iter().map(|&v| v != 0).collect())
                }
                Err(FeatureError::Missing { .. }) => Ok(vec![false; count]),
                Err(e) => Err(e),
            }
        };
        let (xmax, ymin, ymax) = (floats(BBOX_XMAX)?, floats(BBOX_YMIN)?, floats(BBOX_YMAX)?);
        let labels = example.int64_list(CLASS_LABEL)?;
        sized(CLASS_LABEL, labels.len())?;
        let texts = match example.bytes_list(CLASS_TEXT) {
            Ok(values) => sized(CLASS_TEXT, values.len()).map(|()| values.to_vec())?,
            Err(FeatureError::Missing { .. }) => vec![Vec::new(); count],
            Err(e) => return Err(e),
        };
        let (area, is_crowd, difficult) = (
            optional_floats(OBJECT_AREA)?,
            optional_flags(OBJECT_IS_CROWD)?,
            optional_flags(OBJECT_DIFFICULT)?,
        );
        let objects = (0..count)
            .map(|i| DetectionObject {
                xmin: xmin[i],
                ymin: ymin[i],
                xmax: xmax[i],
                ymax: ymax[i],
                label: labels[i],
                text: String::from_utf8_lossy(&texts[i]).into_owned(),
                area: area[i],
                is_crowd: is_crowd[i],
                difficult: difficult[i],
            })
            .collect();
        Ok(Self {
            encoded: example.bytes_scalar(IMAGE_ENCODED)?.to_vec(),
            format: text(IMAGE_FORMAT)?,
            filename: text(IMAGE_FILENAME)?,
            source_id: text(IMAGE_SOURCE_ID)?,
            sha256: text(IMAGE_KEY_SHA256)?,
            height: example.int64_scalar(IMAGE_HEIGHT)?,
            width: example.int64_scalar(IMAGE_WIDTH)?,
            objects,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DetectionExample {
        DetectionExample {
            encoded: vec![0xff, 0xd8, 0xff, 0xd9],
            format: "jpeg".into(),
            filename: "a.jpg".into(),
            source_id: "7".into(),
            sha256: "ab".repeat(32),
            height: 480,
            width: 640,
            objects: vec![
                DetectionObject {
                    xmin: 0.1,
                    ymin: 0.2,
                    xmax: 0.3,
                    ymax: 0.4,
                    label: 1,
                    text: "pedestrian".into(),
                    area: 1200.0,
                    is_crowd: false,
                    difficult: true,
                },
                DetectionObject {
                    xmin: 0.5,
                    ymin: 0.5,
                    xmax: 1.0,
                    ymax: 1.0,
                    label: 2,
                    text: "car".into(),
                    area: 7.5,
                    is_crowd: true,
                    difficult: false,
                },
            ],
        }
    }

    #[test]
    fn round_trips_through_an_example() {
        let example = sample().to_example();
        assert_eq!(example.feature_map().unwrap().len(), 16);
        assert_eq!(example.float_list(BBOX_YMAX).unwrap(), [0.4, 1.0]);
        assert_eq!(example.int64_list(OBJECT_DIFFICULT).unwrap(), [1, 0]);
        let bytes = example.to_bytes();
        let parsed = DetectionExample::from_example(&Example::from_bytes(&bytes).unwrap()).unwrap();
        assert_eq!(parsed, sample());
        assert_eq!(sample().into_example(), example);
    }

    #[test]
    fn optional_keys_default_and_lengths_are_checked() {
        let mut example = sample().to_example();
        let map = &mut example.features.as_mut().unwrap().feature;
        map.remove(OBJECT_AREA);
        map.remove(OBJECT_IS_CROWD);
        let parsed = DetectionExample::from_example(&example).unwrap();
        assert_eq!(parsed.objects[1].area, 0.0);
        assert!(!parsed.objects[1].is_crowd);
        example.insert(BBOX_YMIN, Feature::floats(vec![0.0]));
        assert_eq!(
            DetectionExample::from_example(&example).unwrap_err(),
            FeatureError::LengthMismatch {
                key: BBOX_YMIN.into(),
                found: 1,
                expected: 2
            }
        );
    }
}
