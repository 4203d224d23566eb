//! The conversion pipeline: worker threads read each image, check its
//! header and boxes, hash it (SHA-256, SHA-NI where the CPU has it), build
//! and frame its `tf.train.Example`; one writer puts the results back in
//! plan order, applies the policy, drops duplicates and writes the shards.
//!
//! Jobs are handed out in order from a shared counter and results travel
//! through a bounded channel, so the reorder buffer stays a few records
//! deep however large the dataset is.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use sha2::{Digest, Sha256};
use tfrecord::od::{DetectionExample, DetectionObject, IMAGE_ENCODED};
use tfrecord::{FramedRecord, RecordError, ShardSummary, ShardedWriter, frame_example_split};

use crate::image_header::image_info;
use crate::plan::Job;
use crate::split::Split;
use crate::validate::{Policy, Problem, ProblemKind, Tally, check_box};

/// Settings of one conversion.
pub struct ConvertOptions<'a> {
    pub images_dir: &'a Path,
    /// Where the shards go.
    pub out_dir: &'a Path,
    pub train_shards: usize,
    pub val_shards: usize,
    pub policy: Policy,
    pub min_box_size: f64,
    /// Worker threads (the writer runs beside them).
    pub threads: usize,
    /// Called now and then with (images handled, images planned).
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

/// Why a conversion stopped.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(
        "{0}\n(policy `strict` stops at the first problem: fix it, or set `policy: lenient` to drop and report such records)"
    )]
    Strict(String),
    #[error(transparent)]
    Record(#[from] RecordError),
}

/// What was written.
#[derive(Debug, Default)]
pub struct ConvertReport {
    pub tally: Tally,
    pub images_written: BTreeMap<Split, u64>,
    pub images_dropped: u64,
    pub shards: BTreeMap<Split, Vec<ShardSummary>>,
}

/// One job's result from a worker.
struct Prepared {
    framed: Option<FramedRecord>,
    sha256: [u8; 32],
    problems: Vec<Problem>,
    labels: Vec<String>,
    box_sides: Vec<f64>,
}

/// Converts every job into the shards of its split.
pub fn convert(jobs: &[Job], options: &ConvertOptions) -> Result<ConvertReport, ConvertError> {
    let threads = options.threads.max(1);
    let next = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let (sender, receiver) = sync_channel::<(usize, Prepared)>(threads * 4);
    let buffers = BufferPool::new(threads * 6 + 4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let sender = sender.clone();
            let (next, abort, buffers) = (&next, &abort, &buffers);
            scope.spawn(move || {
                while !abort.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(index) else { break };
                    if sender
                        .send((index, prepare(job, options, buffers.take())))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let result = write_in_order(jobs, receiver, options, &buffers);
        if result.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        result
    })
}

fn write_in_order(
    jobs: &[Job],
    receiver: Receiver<(usize, Prepared)>,
    options: &ConvertOptions,
    buffers: &BufferPool,
) -> Result<ConvertReport, ConvertError> {
    let mut writers = BTreeMap::new();
    writers.insert(
        Split::Train,
        ShardedWriter::create(options.out_dir, Split::Train.name(), options.train_shards)?,
    );
    writers.insert(
        Split::Val,
        ShardedWriter::create(options.out_dir, Split::Val.name(), options.val_shards)?,
    );
    let mut report = ConvertReport::default();
    let mut seen: HashMap<[u8; 32], &str> = HashMap::new();
    let mut pending: BTreeMap<usize, Prepared> = BTreeMap::new();
    let mut expected = 0;
    let total = jobs.len() as u64;
    for (index, prepared) in receiver {
        pending.insert(index, prepared);
        while let Some(prepared) = pending.remove(&expected) {
            let job = &jobs[expected];
            expected += 1;
            for problem in job.problems.iter().chain(&prepared.problems) {
                note(&mut report.tally, problem, options.policy)?;
            }
            let Some(framed) = prepared.framed else {
                report.images_dropped += 1;
                continue;
            };
            if let Some(first) = seen.get(&prepared.sha256) {
                let problem = Problem::new(
                    ProblemKind::DuplicateImage,
                    format!(
                        "{}: `{}` has the same content (sha256 {}) as `{first}`; it is written once",
                        job.image.origin,
                        job.image.file_name,
                        hex(&prepared.sha256[..8])
                    ),
                );
                note(&mut report.tally, &problem, options.policy)?;
                report.images_dropped += 1;
                continue;
            }
            seen.insert(prepared.sha256, &job.image.file_name);
            if let Some(writer) = writers.get_mut(&job.split) {
                writer.write_framed_record(&framed)?;
            }
            buffers.give_back(framed.body);
            *report.images_written.entry(job.split).or_default() += 1;
            for label in prepared.labels {
                *report.tally.boxes_per_class.entry(label).or_default() += 1;
            }
            report.tally.boxes_per_image.push(prepared.box_sides.len());
            report.tally.box_sides.extend(prepared.box_sides);
            if expected % 100 == 0 {
                (options.progress)(expected as u64, total);
            }
        }
    }
    (options.progress)(expected as u64, total);
    for (split, writer) in writers {
        report.shards.insert(split, writer.finish()?);
    }
    Ok(report)
}

/// Counts a problem, or stops the run when the policy is strict.
fn note(tally: &mut Tally, problem: &Problem, policy: Policy) -> Result<(), ConvertError> {
    if policy == Policy::Strict && problem.kind.fails_strict() {
        return Err(ConvertError::Strict(problem.message.clone()));
    }
    tally.record(problem);
    Ok(())
}

/// Reads, checks, hashes, builds and frames one image's record.
/// Image buffers handed back by the writer and reused by the workers, so
/// each image is read into memory that is already mapped.
struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    limit: usize,
}

impl BufferPool {
    fn new(limit: usize) -> Self {
        Self {
            free: Mutex::new(Vec::with_capacity(limit)),
            limit,
        }
    }

    fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    fn give_back(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        if let Ok(mut free) = self.free.lock()
            && free.len() < self.limit
        {
            free.push(buffer);
        }
    }
}

/// Reads a whole file into `buffer` (cleared first).
fn read_into(path: &Path, mut buffer: Vec<u8>) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    buffer.clear();
    buffer.reserve(size.saturating_add(1));
    file.read_to_end(&mut buffer)?;
    Ok(buffer)
}

fn prepare(job: &Job, options: &ConvertOptions, buffer: Vec<u8>) -> Prepared {
    let mut prepared = Prepared {
        framed: None,
        sha256: [0; 32],
        problems: Vec::new(),
        labels: Vec::new(),
        box_sides: Vec::new(),
    };
    let origin = &job.image.origin;
    let path: PathBuf = options.images_dir.join(&job.image.file_name);
    let bytes = match read_into(&path, buffer) {
        Ok(bytes) => bytes,
        Err(e) => {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_owned()
            } else {
                format!("cannot be read: {e}")
            };
            prepared.problems.push(Problem::new(
                ProblemKind::MissingImage,
                format!("{origin}: image `{}` {why}", path.display()),
            ));
            return prepared;
        }
    };
    let info = match image_info(&bytes) {
        Ok(info) => info,
        Err(e) => {
            prepared.problems.push(Problem::new(
                ProblemKind::CorruptImage,
                format!("{origin}: image `{}`: {e}", path.display()),
            ));
            return prepared;
        }
    };
    if let Some((width, height)) = job.image.declared_size
        && (width, height) != (info.width, info.height)
    {
        prepared.problems.push(Problem::new(
            ProblemKind::SizeMismatch,
            format!(
                "{origin}: the annotation says {width}x{height} but `{}` is {}x{}; its boxes may not fit it",
                path.display(),
                info.width,
                info.height
            ),
        ));
        return prepared;
    }
    let (w, h) = (f64::from(info.width), f64::from(info.height));
    let mut objects = Vec::with_capacity(job.boxes.len());
    for planned in &job.boxes {
        let source = &planned.source;
        match check_box(
            source,
            info.width,
            info.height,
            options.min_box_size,
            &job.image.file_name,
        ) {
            Ok(checked) => {
                if checked.clamped {
                    prepared.problems.push(Problem::new(
                        ProblemKind::ClampedBox,
                        format!(
                            "{}: box ({}, {}, {}, {}) reaches past the {}x{} image `{}`; clamped",
                            source.origin,
                            source.xmin,
                            source.ymin,
                            source.xmax,
                            source.ymax,
                            info.width,
                            info.height,
                            job.image.file_name
                        ),
                    ));
                }
                let area = (checked.xmax - checked.xmin) * (checked.ymax - checked.ymin);
                prepared.box_sides.push(area.sqrt());
                prepared.labels.push(source.label.clone());
                objects.push(DetectionObject {
                    xmin: (checked.xmin / w) as f32,
                    ymin: (checked.ymin / h) as f32,
                    xmax: (checked.xmax / w) as f32,
                    ymax: (checked.ymax / h) as f32,
                    label: planned.label_id,
                    text: source.label.clone(),
                    area: area as f32,
                    is_crowd: source.is_crowd,
                    difficult: source.difficult,
                });
            }
            Err(problem) => prepared.problems.push(problem),
        }
    }
    prepared.sha256 = Sha256::digest(&bytes).into();
    let example = DetectionExample {
        encoded: bytes,
        format: info.format.name().to_owned(),
        filename: job.image.file_name.clone(),
        source_id: job.source_id.clone(),
        sha256: hex(&prepared.sha256),
        height: i64::from(info.height),
        width: i64::from(info.width),
        objects,
    };
    // The image bytes go to the shard from the buffer they were read into.
    prepared.framed = Some(frame_example_split(example.into_example(), IMAGE_ENCODED));
    prepared
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}
