//! The machine and tool builds a stage ran with, recorded per stage in the
//! lock file so `reproduce` can say why a re-run may give other bytes: the
//! CPU model and the vector extensions oneDNN and XNNPACK choose kernels by,
//! the OS and architecture, the LiteRT version for stages that link it, and
//! for Python stages the interpreter and the TensorFlow, Keras and NumPy
//! builds installed in the managed environment. Gathered from files only
//! (`/proc/cpuinfo`, `pyvenv.cfg`, `*.dist-info` names): no process starts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// Name -> version or description.
pub type Environment = BTreeMap<String, String>;

/// CPU flags that change which float kernels the ML libraries pick.
const KERNEL_FLAGS: [&str; 7] = [
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
];

/// Python distributions whose builds change numerical results.
const PYTHON_PACKAGES: [&str; 5] = ["tensorflow", "tensorflow_cpu", "keras", "tf_keras", "numpy"];

/// The environment of a stage: the host, plus LiteRT when the stage links it,
/// plus the managed Python environment whose interpreter is `python`.
pub fn of_stage(python: Option<&Path>, litert: bool) -> Environment {
    let mut environment = host().clone();
    if litert {
        environment.insert("litert".to_owned(), provision::litert::VERSION.to_owned());
    }
    if let Some(python) = python {
        environment.extend(python_env(python));
    }
    environment
}

/// The host part, read once per process.
fn host() -> &'static Environment {
    static HOST: OnceLock<Environment> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut host = Environment::new();
        host.insert(
            "host".to_owned(),
            format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
        );
        if let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") {
            host.extend(cpu(&cpuinfo));
        }
        host
    })
}

/// `cpu` (model name) and `cpu_flags` (the kernel-relevant ones) from `/proc/cpuinfo`.
fn cpu(cpuinfo: &str) -> Environment {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    let mut out = Environment::new();
    if let Some(model) = field("model name") {
        out.insert("cpu".to_owned(), model);
    }
    if let Some(flags) = field("flags") {
        let present: Vec<&str> = KERNEL_FLAGS
            .iter()
            .copied()
            .filter(|flag| flags.split_whitespace().any(|f| f == *flag))
            .collect();
        out.insert("cpu_flags".to_owned(), present.join(" "));
    }
    out
}

/// `python` and the versions of [`PYTHON_PACKAGES`] in the environment of the
/// interpreter `python` (`<venv>/bin/python`).
fn python_env(python: &Path) -> Environment {
    let mut out = Environment::new();
    let Some(venv) = python.parent().and_then(Path::parent) else {
        return out;
    };
    if let Ok(config) = std::fs::read_to_string(venv.join("pyvenv.cfg"))
        && let Some(version) = config.lines().find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "version" || key.trim() == "version_info").then(|| value.trim())
        })
    {
        out.insert("python".to_owned(), version.to_owned());
    }
    let Ok(lib) = std::fs::read_dir(venv.join("lib")) else {
        return out;
    };
    for site in lib.flatten().map(|e| e.path().join("site-packages")) {
        let Ok(entries) = std::fs::read_dir(&site) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some((package, version)) = name
                .strip_suffix(".dist-info")
                .and_then(|stem| stem.rsplit_once('-'))
                && PYTHON_PACKAGES.contains(&package.to_lowercase().as_str())
            {
                out.insert(package.to_lowercase(), version.to_owned());
            }
        }
    }
    out
}

/// What differs between a recorded environment and the current one, in
/// words (`tensorflow_cpu 2.15.1 -> 2.16.1`); empty when nothing was recorded.
pub fn differences(recorded: &Environment, now: &Environment) -> Vec<String> {
    if recorded.is_empty() {
        return Vec::new();
    }
    let names: std::collections::BTreeSet<&String> = recorded.keys().chain(now.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| match (recorded.get(name), now.get(name)) {
            (Some(a), Some(b)) if a != b => Some(format!("{name}: {a} -> {b}")),
            (Some(a), None) => Some(format!("{name}: {a} -> (none)")),
            (None, Some(b)) => Some(format!("{name}: (none) -> {b}")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cpu_model_and_the_kernel_flags() {
        let info = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480C\nflags\t\t: fpu sse avx avx2 fma avx512f amx_tile\n\nprocessor\t: 1\n";
        let cpu = cpu(info);
        assert_eq!(cpu["cpu"], "Intel(R) Xeon(R) Platinum 8480C");
        assert_eq!(cpu["cpu_flags"], "avx avx2 fma avx512f amx_tile");
    }

    #[test]
    fn reads_python_and_package_versions_from_the_venv() {
        let venv = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(venv.path().join("bin")).unwrap();
        std::fs::write(
            venv.path().join("pyvenv.cfg"),
            "home = /usr/bin\nversion = 3.11.7\n",
        )
        .unwrap();
        let site = venv.path().join("lib/python3.11/site-packages");
        for dir in [
            "tensorflow_cpu-2.15.1.dist-info",
            "numpy-1.26.4.dist-info",
            "Pillow-9.5.0.dist-info",
            "tf_keras",
        ] {
            std::fs::create_dir_all(site.join(dir)).unwrap();
        }
        let found = python_env(&venv.path().join("bin/python"));
        assert_eq!(
            found,
            Environment::from([
                ("numpy".to_owned(), "1.26.4".to_owned()),
                ("python".to_owned(), "3.11.7".to_owned()),
                ("tensorflow_cpu".to_owned(), "2.15.1".to_owned()),
            ])
        );
    }

    #[test]
    fn differences_name_what_moved() {
        let recorded = Environment::from([
            ("cpu".to_owned(), "A".to_owned()),
            ("tensorflow_cpu".to_owned(), "2.15.1".to_owned()),
        ]);
        let now = Environment::from([
            ("cpu".to_owned(), "A".to_owned()),
            ("tensorflow_cpu".to_owned(), "2.16.1".to_owned()),
            ("litert".to_owned(), "2.1.4".to_owned()),
        ]);
        assert_eq!(
            differences(&recorded, &now),
            [
                "litert: (none) -> 2.1.4",
                "tensorflow_cpu: 2.15.1 -> 2.16.1"
            ]
        );
        assert!(differences(&Environment::new(), &now).is_empty());
    }
}
