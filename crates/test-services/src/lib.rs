//! Real servers for integration tests: each is installed by `.ci/run` into
//! `~/.cache/edgepipe`, started on loopback in a temporary directory by the
//! test that needs it, and stopped when its handle is dropped.
//!
//! A test asks for a service with its module's `start`; when the service
//! cannot be found or started, [`unavailable`] decides: under CI (or with
//! [`REQUIRE_SERVICES_VAR`]) the test fails with the reason, elsewhere it says
//! how to install the service and returns `None`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod garage;
pub mod slurm;

/// Set to `1`, or `CI=true`: a test whose server cannot start fails instead of
/// returning early.
pub const REQUIRE_SERVICES_VAR: &str = "EDGEPIPE_REQUIRE_SERVICES";

/// Whether a missing service must fail the test here.
pub fn services_required() -> bool {
    let set = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
    };
    set(REQUIRE_SERVICES_VAR, "1") || set("CI", "true")
}

/// Reports a service that could not be started: panics with `why` and `how`
/// where [`services_required`], else prints both and returns `None`.
pub fn unavailable<T>(service: &str, why: &str, how: &str) -> Option<T> {
    assert!(
        !services_required(),
        "{service} is needed by this test and could not start: {why}. {how}"
    );
    eprintln!("not run: {service} could not start: {why}. {how}");
    None
}
