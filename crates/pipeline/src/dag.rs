//! The stage graph: topological order (file order among independent
//! stages), cycles, and the closure of a stage's upstream stages.

use std::collections::{BTreeSet, HashMap};

use crate::model::Pipeline;

/// Stage indices in an order where every stage follows its inputs; or the
/// names along one cycle.
pub fn topological_order(pipeline: &Pipeline) -> Result<Vec<usize>, Vec<String>> {
    let index: HashMap<&str, usize> = pipeline
        .stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let deps: Vec<BTreeSet<usize>> = pipeline
        .stages
        .iter()
        .map(|s| {
            s.upstream()
                .filter(|u| *u != s.name)
                .filter_map(|u| index.get(u).copied())
                .collect()
        })
        .collect();
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; deps.len()];
    let mut order = Vec::with_capacity(deps.len());
    for start in 0..deps.len() {
        let mut stack: Vec<(usize, Vec<usize>)> = Vec::new();
        if state[start] != 0 {
            continue;
        }
        state[start] = 1;
        stack.push((start, deps[start].iter().copied().collect()));
        while let Some((node, pending)) = stack.last_mut() {
            if let Some(next) = pending.pop() {
                match state[next] {
                    0 => {
                        state[next] = 1;
                        let next_deps = deps[next].iter().copied().collect();
                        stack.push((next, next_deps));
                    }
                    1 => {
                        let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                        return Err(stack[from..]
                            .iter()
                            .map(|(n, _)| pipeline.stages[*n].name.clone())
                            .collect());
                    }
                    _ => {}
                }
            } else {
                state[*node] = 2;
                order.push(*node);
                stack.pop();
            }
        }
    }
    Ok(order)
}

/// `targets` and every stage they depend on, directly or not.
pub fn with_upstream(pipeline: &Pipeline, targets: &[&str]) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = targets.iter().map(|s| (*s).to_owned()).collect();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(stage) = pipeline.stage(&name) {
            todo.extend(stage.upstream().map(str::to_owned));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn orders_dependencies_first_and_finds_upstream() {
        let p = Pipeline::parse(
            Path::new("/x.yaml"),
            "name: d\nstages:\n  c: { kind: k, inputs: { x: '${b.o}', y: '${a.o}' } }\n  b: { kind: k, inputs: { x: '${a.o}' } }\n  a: { kind: k }\n  z: { kind: k }\n",
        )
        .unwrap();
        let order = topological_order(&p).unwrap();
        let names: Vec<&str> = order.iter().map(|i| p.stages[*i].name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "z"]);
        assert_eq!(
            with_upstream(&p, &["b"]),
            BTreeSet::from(["a".to_owned(), "b".to_owned()])
        );
    }
}
