//! Prints a model's operators, I/O tensors and custom op options.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    for path in std::env::args().skip(1) {
        let model = tflite::Model::from_path(&path)?;
        println!(
            "== {path}: {} subgraphs, {} buffers",
            model.subgraphs.len(),
            model.buffer_sizes.len()
        );
        for (s, g) in model.subgraphs.iter().enumerate() {
            for t in g.input_tensors().iter().chain(g.output_tensors().iter()) {
                println!(
                    "  sg{s} io tensor {} {:?} {} {:?} sig={:?} q={:?}",
                    t.index,
                    t.name,
                    t.dtype,
                    t.shape,
                    t.shape_signature,
                    t.quantization
                        .as_ref()
                        .map(|q| (q.scale.len(), q.per_tensor()))
                );
            }
            for op in &g.operators {
                println!(
                    "  sg{s} op {} {} v{} in={:?} out={:?}",
                    op.index,
                    op.display_name(),
                    op.version,
                    op.inputs,
                    op.outputs
                );
                if let Some(summary) = op.custom_options_summary() {
                    println!("     options {summary}");
                }
                if let Some(e) = op.edgetpu_op()? {
                    println!("     edgetpu {e:?}");
                }
                if let Some(d) = op.detection_postprocess_options()? {
                    println!("     postprocess {d:?}");
                }
            }
        }
    }
    Ok(())
}
