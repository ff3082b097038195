//! Finding a server binary, and the policy when it is missing.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A server binary the harness can start, and where it comes from.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// The file name, looked up on `PATH` when it is not at `default_path`.
    pub name: &'static str,
    /// Where the Debian package installs it.
    pub default_path: &'static str,
    /// The Debian package that provides it.
    pub debian_package: &'static str,
}

/// The MQTT broker.
pub const MOSQUITTO: Binary = Binary {
    name: "mosquitto",
    default_path: "/usr/sbin/mosquitto",
    debian_package: "mosquitto",
};

/// VictoriaMetrics, single node.
pub const VICTORIA_METRICS: Binary = Binary {
    name: "victoria-metrics",
    default_path: "/usr/bin/victoria-metrics",
    debian_package: "victoria-metrics",
};

/// InfluxDB 1.x.
pub const INFLUXD: Binary = Binary {
    name: "influxd",
    default_path: "/usr/bin/influxd",
    debian_package: "influxdb",
};

impl Binary {
    /// The binary's path: `default_path` if it is there, else the first match on
    /// `PATH`.
    pub fn locate(&self) -> Option<PathBuf> {
        let default = Path::new(self.default_path);
        if default.is_file() {
            return Some(default.to_path_buf());
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(self.name))
            .find(|candidate| candidate.is_file())
    }
}

/// Whether the environment asks missing servers to fail the run: `CI` set to
/// anything but empty, `0` or `false`.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| {
        let v = v.trim();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// The path of `binary`, or `None` when the test should skip.
///
/// When the binary is missing and `CI` is set, this panics, so the test fails
/// with the package to install. Elsewhere it prints `SKIPPED: ...` on stderr,
/// past the test runner's capture, and returns `None`; the test then returns
/// early.
pub fn require(binary: &Binary) -> Option<PathBuf> {
    decide(binary, in_ci())
}

fn decide(binary: &Binary, in_ci: bool) -> Option<PathBuf> {
    if let Some(path) = binary.locate() {
        return Some(path);
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_owned();
    let advice = format!(
        "`{}` not found (looked at {} and on PATH); install it with \
         `apt-get install {}` or run scripts/test.sh",
        binary.name, binary.default_path, binary.debian_package
    );
    assert!(
        !in_ci,
        "{test}: {advice} (CI is set, so a missing server is a failure)"
    );
    // Straight to the process's stderr: the test runner captures `eprintln!`, and
    // a skip must show in a plain `cargo test`.
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {test}: {advice} ***\n");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_binary_is_found() {
        let sh = Binary {
            name: "sh",
            default_path: "/bin/sh",
            debian_package: "dash",
        };
        assert!(require(&sh).is_some());
    }

    const MISSING: Binary = Binary {
        name: "no-such-server-binary",
        default_path: "/nonexistent/no-such-server-binary",
        debian_package: "no-such-package",
    };

    #[test]
    fn a_missing_binary_skips_outside_ci() {
        assert!(MISSING.locate().is_none());
        assert!(decide(&MISSING, false).is_none());
    }

    #[test]
    #[should_panic(expected = "apt-get install no-such-package")]
    fn a_missing_binary_fails_in_ci() {
        decide(&MISSING, true);
    }
}
