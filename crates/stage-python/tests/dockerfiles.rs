//! Stage scripts find `edgepipe_stage` under the docker executor because
//! `PythonScript` passes `-e PYTHONPATH=<package dir>` (the workspace is
//! mounted at its own path). That replaces an image's own PYTHONPATH, so no
//! image may rely on one: they add import paths with `.pth` files.
#![allow(clippy::unwrap_used)]

use stage_test_support::workspace_root;

#[test]
fn no_image_sets_its_own_python_path() {
    let dir = workspace_root().join("dockerfiles");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("Dockerfile") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or_default();
            assert!(
                !code.contains("PYTHONPATH"),
                "{}:{}: sets PYTHONPATH, which the stage's PYTHONPATH replaces; write a .pth file into site-packages instead",
                path.display(),
                number + 1
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 3,
        "only {checked} Dockerfiles under {}",
        dir.display()
    );
}
