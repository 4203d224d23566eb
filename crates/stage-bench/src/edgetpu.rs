//! Whether Edge TPU numbers can be measured here: the `libedgetpu.so.1`
//! runtime must load and an accelerator must be attached (a PCIe `apex`
//! device or a Coral USB stick, before or after its firmware is loaded).
//! Without both, the bench stage records "no device" for compiled models —
//! it never reports a CPU number under an Edge TPU label.

use std::path::Path;

/// The Edge TPU runtime library name the Coral packages install.
pub const EDGETPU_LIBRARY: &str = "libedgetpu.so.1";

/// What was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeTpuAvailability {
    pub library: bool,
    pub device: Option<String>,
}

impl EdgeTpuAvailability {
    pub fn usable(&self) -> bool {
        self.library && self.device.is_some()
    }

    /// One line for the report when not usable.
    pub fn reason(&self) -> String {
        match (self.library, &self.device) {
            (true, Some(device)) => format!("Edge TPU at {device}"),
            (false, None) => {
                format!("no device: neither {EDGETPU_LIBRARY} nor an Edge TPU is present")
            }
            (false, Some(device)) => format!(
                "no device usable: {device} is attached but {EDGETPU_LIBRARY} is not installed"
            ),
            (true, None) => {
                format!("no device: {EDGETPU_LIBRARY} is installed but no Edge TPU is attached")
            }
        }
    }
}

/// Probes the library and devices.
pub fn probe() -> EdgeTpuAvailability {
    EdgeTpuAvailability {
        library: library_loads(),
        device: find_device(Path::new("/dev"), Path::new("/sys/bus/usb/devices")),
    }
}

fn library_loads() -> bool {
    // SAFETY: loading the Edge TPU runtime runs its initialisers only; it
    // is unloaded right away and no symbol is called.
    unsafe { libloading::Library::new(EDGETPU_LIBRARY) }.is_ok()
}

/// `/dev/apex_N` (PCIe/M.2) or a USB device with Coral's ids
/// (1a6e:089a before firmware, 18d1:9302 after).
pub fn find_device(dev: &Path, usb: &Path) -> Option<String> {
    if let Ok(entries) = std::fs::read_dir(dev) {
        let mut apex: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.starts_with("apex_"))
            .collect();
        apex.sort();
        if let Some(name) = apex.first() {
            return Some(dev.join(name).display().to_string());
        }
    }
    let entries = std::fs::read_dir(usb).ok()?;
    for entry in entries.filter_map(Result::ok) {
        let read =
            |f: &str| std::fs::read_to_string(entry.path().join(f)).map(|s| s.trim().to_owned());
        if let (Ok(vendor), Ok(product)) = (read("idVendor"), read("idProduct"))
            && matches!(
                (vendor.as_str(), product.as_str()),
                ("1a6e", "089a") | ("18d1", "9302")
            )
        {
            return Some(format!(
                "USB {vendor}:{product} ({})",
                entry.path().display()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pcie_and_usb_devices() {
        let root = tempfile::tempdir().unwrap();
        let dev = root.path().join("dev");
        let usb = root.path().join("usb");
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::create_dir_all(usb.join("1-1")).unwrap();
        std::fs::write(usb.join("1-1/idVendor"), "1d6b\n").unwrap();
        std::fs::write(usb.join("1-1/idProduct"), "0002\n").unwrap();
        assert_eq!(find_device(&dev, &usb), None);
        std::fs::create_dir_all(usb.join("2-1")).unwrap();
        std::fs::write(usb.join("2-1/idVendor"), "18d1\n").unwrap();
        std::fs::write(usb.join("2-1/idProduct"), "9302\n").unwrap();
        assert!(
            find_device(&dev, &usb)
                .unwrap()
                .starts_with("USB 18d1:9302")
        );
        std::fs::write(dev.join("apex_0"), "").unwrap();
        assert_eq!(
            find_device(&dev, &usb),
            Some(dev.join("apex_0").display().to_string())
        );
    }

    #[test]
    fn reasons_never_claim_a_device_that_is_missing() {
        let none = EdgeTpuAvailability {
            library: false,
            device: None,
        };
        assert!(!none.usable());
        assert!(none.reason().starts_with("no device"));
        let lib_only = EdgeTpuAvailability {
            library: true,
            device: None,
        };
        assert!(lib_only.reason().starts_with("no device"));
    }
}
