//! The label map: class names with ids from 1 (0 is the background), and
//! its `label_map.pbtxt` text form, which the Object Detection API's
//! `label_map_util` reads.

use std::collections::HashMap;

/// Class names in id order: the first has id 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMap {
    names: Vec<String>,
    ids: HashMap<String, i64>,
}

/// Why a list of names is not a label map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelMapError {
    #[error(
        "the label map is empty: list the classes in `classes`, or check that the annotations have boxes"
    )]
    Empty,
    #[error("class `{0}` is listed twice")]
    Duplicate(String),
    #[error("class names must not be empty")]
    EmptyName,
}

impl LabelMap {
    pub fn new(names: Vec<String>) -> Result<Self, LabelMapError> {
        if names.is_empty() {
            return Err(LabelMapError::Empty);
        }
        let mut ids = HashMap::new();
        for (index, name) in names.iter().enumerate() {
            if name.is_empty() {
                return Err(LabelMapError::EmptyName);
            }
            if ids.insert(name.clone(), index as i64 + 1).is_some() {
                return Err(LabelMapError::Duplicate(name.clone()));
            }
        }
        Ok(Self { names, ids })
    }

    /// The id of `name` (from 1), if it is in the map.
    pub fn id(&self, name: &str) -> Option<i64> {
        self.ids.get(name).copied()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `(id, name)` pairs in id order.
    pub fn items(&self) -> impl Iterator<Item = (i64, &str)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (i as i64 + 1, n.as_str()))
    }

    /// The `label_map.pbtxt` text.
    pub fn to_pbtxt(&self) -> String {
        let mut text = String::new();
        for (id, name) in self.items() {
            let quoted = name.replace('\\', "\\\\").replace('\'', "\\'");
            text.push_str(&format!("item {{\n  id: {id}\n  name: '{quoted}'\n}}\n"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_golden_pbtxt() {
        let map = LabelMap::new(vec!["pedestrian".into(), "cyclist's bike".into()]).unwrap();
        assert_eq!(
            map.to_pbtxt(),
            "item {\n  id: 1\n  name: 'pedestrian'\n}\nitem {\n  id: 2\n  name: 'cyclist\\'s bike'\n}\n"
        );
        assert_eq!(map.id("pedestrian"), Some(1));
        assert_eq!(map.id("car"), None);
    }

    #[test]
    fn rejects_empty_and_duplicate_names() {
        assert_eq!(LabelMap::new(vec![]), Err(LabelMapError::Empty));
        assert_eq!(
            LabelMap::new(vec!["a".into(), "a".into()]),
            Err(LabelMapError::Duplicate("a".into()))
        );
        assert_eq!(
            LabelMap::new(vec![String::new()]),
            Err(LabelMapError::EmptyName)
        );
    }
}
