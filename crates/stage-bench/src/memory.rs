//! Peak resident memory of this process (`VmHWM` in `/proc/self/status`,
//! falling back to `getrusage`'s `ru_maxrss` where `/proc` is absent).

/// Peak RSS in bytes, when the platform reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        return parse_vm_hwm(&status);
    }
    rusage_max_rss()
}

/// `VmHWM:   12345 kB` -> bytes.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(unix)]
fn rusage_max_rss() -> Option<u64> {
    #[repr(C)]
    struct Timeval {
        sec: i64,
        usec: i64,
    }
    #[repr(C)]
    struct Rusage {
        utime: Timeval,
        stime: Timeval,
        maxrss: i64,
        rest: [i64; 13],
    }
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut usage = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        maxrss: 0,
        rest: [0; 13],
    };
    // SAFETY: getrusage writes one `struct rusage` (RUSAGE_SELF = 0), whose
    // layout on 64-bit Unix is two timevals followed by 14 longs.
    let rc = unsafe { getrusage(0, &mut usage) };
    // Linux reports kilobytes; macOS reports bytes.
    let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
    (rc == 0).then(|| usage.maxrss.max(0) as u64 * scale)
}

#[cfg(not(unix))]
fn rusage_max_rss() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vm_hwm() {
        let status = "Name:\tx\nVmPeak:\t  2000 kB\nVmHWM:\t    1536 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(1536 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
    }

    #[test]
    fn grows_after_touching_memory() {
        let before = peak_rss_bytes().unwrap();
        let block = vec![1u8; 64 << 20];
        let after = peak_rss_bytes().unwrap();
        assert!(block.iter().map(|&b| u64::from(b)).sum::<u64>() == 64 << 20);
        assert!(after >= before + (60 << 20), "{before} -> {after}");
    }
}
