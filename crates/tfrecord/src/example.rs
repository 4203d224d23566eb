//! `tf.train.Example`, `Features`, `Feature` and the three value lists, as
//! `prost` messages.
//!
//! Field names and numbers follow TensorFlow's `example.proto` and
//! `feature.proto`: `Example.features = 1`, `Features.feature = 1` (a map
//! from string to `Feature`), `Feature` is a oneof of `bytes_list = 1`,
//! `float_list = 2`, `int64_list = 3`, and each list holds `value = 1`
//! (numbers packed, as proto3 does by default). The feature map is a
//! `BTreeMap`, so an `Example` always encodes to the same bytes.

use std::collections::BTreeMap;

use prost::Message;

use crate::error::FeatureError;

/// One training example: named features.
#[derive(Clone, PartialEq, Message)]
pub struct Example {
    #[prost(message, optional, tag = "1")]
    pub features: Option<Features>,
}

/// The feature map of an [`Example`].
#[derive(Clone, PartialEq, Message)]
pub struct Features {
    #[prost(btree_map = "string, message", tag = "1")]
    pub feature: BTreeMap<String, Feature>,
}

/// One feature: a list of byte strings, floats or 64-bit integers.
#[derive(Clone, PartialEq, Message)]
pub struct Feature {
    #[prost(oneof = "feature::Kind", tags = "1, 2, 3")]
    pub kind: Option<feature::Kind>,
}

/// The oneof of [`Feature`].
pub mod feature {
    /// Which list a [`Feature`](super::Feature) holds.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "1")]
        BytesList(super::BytesList),
        #[prost(message, tag = "2")]
        FloatList(super::FloatList),
        #[prost(message, tag = "3")]
        Int64List(super::Int64List),
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct BytesList {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub value: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
pub struct FloatList {
    #[prost(float, repeated, tag = "1")]
    pub value: Vec<f32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Int64List {
    #[prost(int64, repeated, tag = "1")]
    pub value: Vec<i64>,
}

impl Feature {
    /// A `bytes_list` feature.
    pub fn bytes<I, B>(values: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: Into<Vec<u8>>,
    {
        let value = values.into_iter().map(Into::into).collect();
        Self {
            kind: Some(feature::Kind::BytesList(BytesList { value })),
        }
    }

    /// A `bytes_list` feature with one value.
    pub fn bytes_one(value: impl Into<Vec<u8>>) -> Self {
        Self::bytes([value.into()])
    }

    /// A `float_list` feature.
    pub fn floats(value: Vec<f32>) -> Self {
        Self {
            kind: Some(feature::Kind::FloatList(FloatList { value })),
        }
    }

    /// An `int64_list` feature.
    pub fn int64s(value: Vec<i64>) -> Self {
        Self {
            kind: Some(feature::Kind::Int64List(Int64List { value })),
        }
    }

    /// An `int64_list` feature with one value.
    pub fn int64_one(value: i64) -> Self {
        Self::int64s(vec![value])
    }

    /// `bytes_list`, `float_list`, `int64_list` or `empty` (no kind set).
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Some(feature::Kind::BytesList(_)) => "bytes_list",
            Some(feature::Kind::FloatList(_)) => "float_list",
            Some(feature::Kind::Int64List(_)) => "int64_list",
            None => "empty",
        }
    }
}

impl Example {
    /// An example with no features yet.
    pub fn new() -> Self {
        Self {
            features: Some(Features::default()),
        }
    }

    /// Adds (or replaces) a feature.
    pub fn insert(&mut self, key: impl Into<String>, feature: Feature) -> &mut Self {
        self.features
            .get_or_insert_with(Features::default)
            .feature
            .insert(key.into(), feature);
        self
    }

    /// Adds a feature, builder style.
    pub fn with(mut self, key: impl Into<String>, feature: Feature) -> Self {
        self.insert(key, feature);
        self
    }

    /// The feature map (empty when the message has none).
    pub fn feature_map(&self) -> Option<&BTreeMap<String, Feature>> {
        self.features.as_ref().map(|f| &f.feature)
    }

    /// The feature under `key`.
    pub fn feature(&self, key: &str) -> Result<&Feature, FeatureError> {
        self.feature_map()
            .and_then(|map| map.get(key))
            .ok_or_else(|| FeatureError::Missing {
                key: key.to_owned(),
            })
    }

    /// The values of a `bytes_list` feature.
    pub fn bytes_list(&self, key: &str) -> Result<&[Vec<u8>], FeatureError> {
        match &self.feature(key)?.kind {
            Some(feature::Kind::BytesList(list)) => Ok(&list.value),
            _ => Err(self.wrong_kind(key, "bytes_list")),
        }
    }

    /// The values of a `float_list` feature.
    pub fn float_list(&self, key: &str) -> Result<&[f32], FeatureError> {
        match &self.feature(key)?.kind {
            Some(feature::Kind::FloatList(list)) => Ok(&list.value),
            _ => Err(self.wrong_kind(key, "float_list")),
        }
    }

    /// The values of an `int64_list` feature.
    pub fn int64_list(&self, key: &str) -> Result<&[i64], FeatureError> {
        match &self.feature(key)?.kind {
            Some(feature::Kind::Int64List(list)) => Ok(&list.value),
            _ => Err(self.wrong_kind(key, "int64_list")),
        }
    }

    /// The single value of a `bytes_list` feature.
    pub fn bytes_scalar(&self, key: &str) -> Result<&[u8], FeatureError> {
        match self.bytes_list(key)? {
            [one] => Ok(one),
            values => Err(FeatureError::NotScalar {
                key: key.to_owned(),
                found: values.len(),
            }),
        }
    }

    /// The single value of an `int64_list` feature.
    pub fn int64_scalar(&self, key: &str) -> Result<i64, FeatureError> {
        match self.int64_list(key)? {
            [one] => Ok(*one),
            values => Err(FeatureError::NotScalar {
                key: key.to_owned(),
                found: values.len(),
            }),
        }
    }

    /// Parses a serialized `tf.train.Example`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Self::decode(bytes)
    }

    /// Serializes the message.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    fn wrong_kind(&self, key: &str, expected: &'static str) -> FeatureError {
        let found = self
            .feature(key)
            .map(Feature::kind_name)
            .unwrap_or("nothing");
        FeatureError::WrongKind {
            key: key.to_owned(),
            expected,
            found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_wire_format_of_example_proto() {
        let example = Example::new().with("a", Feature::int64_one(3));
        // Example.features (1, len 12) { Features.feature (1, len 10) map entry
        //   { key (1) "a", value (2, len 5) Feature { int64_list (3, len 3)
        //     { value (1, packed, len 1) [3] } } } }
        let expected = [
            0x0a, 0x0c, 0x0a, 0x0a, 0x0a, 0x01, b'a', 0x12, 0x05, 0x1a, 0x03, 0x0a, 0x01, 0x03,
        ];
        assert_eq!(example.to_bytes(), expected);
    }

    #[test]
    fn float_and_bytes_lists_use_their_field_numbers() {
        let float = Feature::floats(vec![1.0]).encode_to_vec();
        // float_list (2, len 6) { value (1, packed, len 4) [1.0f32 LE] }
        assert_eq!(float, [0x12, 0x06, 0x0a, 0x04, 0x00, 0x00, 0x80, 0x3f]);
        let bytes = Feature::bytes_one(b"xy".to_vec()).encode_to_vec();
        // bytes_list (1, len 4) { value (1, len 2) "xy" }
        assert_eq!(bytes, [0x0a, 0x04, 0x0a, 0x02, b'x', b'y']);
    }

    #[test]
    fn accessors_return_values_and_typed_errors() {
        let example = Example::new()
            .with("image/height", Feature::int64_one(480))
            .with("image/format", Feature::bytes_one(b"jpeg".to_vec()))
            .with("image/object/bbox/xmin", Feature::floats(vec![0.25, 0.5]));
        let parsed = Example::from_bytes(&example.to_bytes()).unwrap();
        assert_eq!(parsed, example);
        assert_eq!(parsed.int64_scalar("image/height").unwrap(), 480);
        assert_eq!(parsed.bytes_scalar("image/format").unwrap(), b"jpeg");
        assert_eq!(
            parsed.float_list("image/object/bbox/xmin").unwrap(),
            [0.25, 0.5]
        );
        assert_eq!(
            parsed.int64_list("image/format").unwrap_err(),
            FeatureError::WrongKind {
                key: "image/format".into(),
                expected: "int64_list",
                found: "bytes_list"
            }
        );
        assert_eq!(
            parsed.bytes_list("image/width").unwrap_err(),
            FeatureError::Missing {
                key: "image/width".into()
            }
        );
    }

    #[test]
    fn unpacked_numbers_decode_too() {
        // int64_list { value: 1 value: 2 } written unpacked (tag 1 varint twice).
        let bytes = [0x1a, 0x04, 0x08, 0x01, 0x08, 0x02];
        let feature = Feature::decode(&bytes[..]).unwrap();
        assert_eq!(feature, Feature::int64s(vec![1, 2]));
    }
}
