//! From imported annotations to a plan of records: images in time (file
//! name) order, labels renamed and filtered, the label map fixed, each box
//! given its class id, each image its split. Nothing here reads images.

use std::collections::{BTreeMap, BTreeSet};

use crate::annotation::{SourceBox, SourceImage};
use crate::label_map::{LabelMap, LabelMapError};
use crate::split::{Split, SplitMethod, assign, natural_cmp};
use crate::validate::{Problem, ProblemKind};

/// How labels are mapped onto classes.
#[derive(Debug, Clone, Default)]
pub struct LabelRules {
    /// Applied first: `from -> to`.
    pub rename: BTreeMap<String, String>,
    /// Labels dropped on purpose (after renaming); counted, not problems.
    pub ignore: Vec<String>,
    /// The label map in id order; empty means every remaining label, sorted.
    pub classes: Vec<String>,
    /// Drop boxes marked difficult.
    pub drop_difficult: bool,
}

/// A box with its class id.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedBox {
    pub source: SourceBox,
    pub label_id: i64,
}

/// One record to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub image: SourceImage,
    pub boxes: Vec<PlannedBox>,
    pub split: Split,
    pub source_id: String,
    /// Problems found while planning (unknown labels).
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub label_map: LabelMap,
    pub jobs: Vec<Job>,
    pub boxes_ignored: u64,
    pub boxes_difficult_dropped: u64,
}

/// Orders, relabels and splits the images.
pub fn plan(
    mut images: Vec<SourceImage>,
    rules: &LabelRules,
    method: SplitMethod,
    train_fraction: f64,
    seed: u64,
) -> Result<Plan, LabelMapError> {
    images.sort_by(|a, b| natural_cmp(&a.file_name, &b.file_name));
    let ignore: BTreeSet<&str> = rules.ignore.iter().map(String::as_str).collect();
    let (mut boxes_ignored, mut boxes_difficult_dropped) = (0, 0);
    for image in &mut images {
        image.boxes.retain_mut(|b| {
            if let Some(to) = rules.rename.get(&b.label) {
                b.label.clone_from(to);
            }
            if ignore.contains(b.label.as_str()) {
                boxes_ignored += 1;
                return false;
            }
            if rules.drop_difficult && b.difficult {
                boxes_difficult_dropped += 1;
                return false;
            }
            true
        });
    }
    let label_map = if rules.classes.is_empty() {
        let found: BTreeSet<&str> = images
            .iter()
            .flat_map(|i| &i.boxes)
            .map(|b| b.label.as_str())
            .collect();
        LabelMap::new(found.into_iter().map(str::to_owned).collect())?
    } else {
        LabelMap::new(rules.classes.clone())?
    };
    let splits = assign(images.len(), method, train_fraction, seed);
    let jobs = images
        .into_iter()
        .zip(splits)
        .enumerate()
        .map(|(index, (mut image, split))| {
            let mut problems = Vec::new();
            let boxes = std::mem::take(&mut image.boxes)
                .into_iter()
                .filter_map(|source| match label_map.id(&source.label) {
                    Some(label_id) => Some(PlannedBox { source, label_id }),
                    None => {
                        problems.push(Problem::new(
                            ProblemKind::UnknownLabel,
                            format!(
                                "{}: label `{}` is not in the label map ({}); add it to `classes`, \
                                 list it in `ignore_labels`, or map it with `rename`",
                                source.origin,
                                source.label,
                                label_map.names().join(", ")
                            ),
                        ));
                        None
                    }
                })
                .collect();
            let source_id = image.source_id.unwrap_or(index as i64 + 1).to_string();
            Job {
                image,
                boxes,
                split,
                source_id,
                problems,
            }
        })
        .collect();
    Ok(Plan {
        label_map,
        jobs,
        boxes_ignored,
        boxes_difficult_dropped,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::annotation::Origin;

    fn image(name: &str, labels: &[(&str, bool)]) -> SourceImage {
        let file: Arc<Path> = Path::new("a.csv").into();
        SourceImage {
            file_name: name.into(),
            declared_size: None,
            source_id: None,
            boxes: labels
                .iter()
                .map(|(label, difficult)| SourceBox {
                    label: (*label).into(),
                    xmin: 0.0,
                    ymin: 0.0,
                    xmax: 1.0,
                    ymax: 1.0,
                    difficult: *difficult,
                    is_crowd: false,
                    origin: Origin::line(&file, 2),
                })
                .collect(),
            origin: Origin::line(&file, 2),
        }
    }

    #[test]
    fn orders_renames_filters_and_maps_labels() {
        let images = vec![
            image("f10.jpg", &[("person", false), ("dog", false)]),
            image("f9.jpg", &[("person", true), ("car", false)]),
        ];
        let rules = LabelRules {
            rename: [("person".to_owned(), "pedestrian".to_owned())].into(),
            ignore: vec!["dog".into()],
            classes: vec![],
            drop_difficult: true,
        };
        let plan = plan(images, &rules, SplitMethod::Temporal, 0.5, 0).unwrap();
        assert_eq!(plan.label_map.names(), ["car", "pedestrian"]);
        assert_eq!((plan.boxes_ignored, plan.boxes_difficult_dropped), (1, 1));
        let names: Vec<_> = plan
            .jobs
            .iter()
            .map(|j| j.image.file_name.as_str())
            .collect();
        assert_eq!(names, ["f9.jpg", "f10.jpg"]);
        assert_eq!(plan.jobs[0].split, Split::Train);
        assert_eq!(plan.jobs[1].split, Split::Val);
        assert_eq!(plan.jobs[0].source_id, "1");
        assert_eq!(
            plan.jobs[0]
                .boxes
                .iter()
                .map(|b| b.label_id)
                .collect::<Vec<_>>(),
            [1]
        );
        assert_eq!(plan.jobs[1].boxes[0].source.label, "pedestrian");
        assert_eq!(plan.jobs[1].boxes[0].label_id, 2);
    }

    #[test]
    fn labels_outside_the_given_classes_are_problems() {
        let rules = LabelRules {
            classes: vec!["pedestrian".into()],
            ..Default::default()
        };
        let plan = plan(
            vec![image("a.jpg", &[("pedestrian", false), ("car", false)])],
            &rules,
            SplitMethod::Random,
            0.8,
            1,
        )
        .unwrap();
        let job = &plan.jobs[0];
        assert_eq!(job.boxes.len(), 1);
        assert_eq!(job.problems.len(), 1);
        assert_eq!(job.problems[0].kind, ProblemKind::UnknownLabel);
        assert!(
            job.problems[0]
                .message
                .starts_with("a.csv:2: label `car` is not in the label map (pedestrian)")
        );
    }

    #[test]
    fn no_boxes_and_no_classes_is_an_error() {
        let err = plan(
            vec![image("a.jpg", &[])],
            &LabelRules::default(),
            SplitMethod::Random,
            0.8,
            1,
        )
        .unwrap_err();
        assert_eq!(err, LabelMapError::Empty);
    }
}
