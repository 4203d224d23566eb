//! Commands and copies on a board over OpenSSH, as argv for `ssh` and `scp`
//! (never a local shell string). Every connection runs in batch mode (no
//! password or passphrase prompts), checks the host key strictly against
//! the user's or the given `known_hosts`, and gives up after a connect
//! timeout. The remote side of `ssh` always goes through the board's shell,
//! so each remote argument is single-quoted.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use stage_api::ToolCommand;

/// How to reach the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// `user@host` or `host` (a `Host` alias of the SSH config works too).
    destination: String,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    connect_timeout_secs: u64,
}

/// A destination edgepipe will not pass to `ssh`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "device.ssh `{given}` is not an SSH destination: use `user@host` or `host` (letters, digits, `.`, `-`, `_`, one `@`)"
)]
pub struct BadDestination {
    pub given: String,
}

const HINT: &str = "install the OpenSSH client (Debian: apt-get install openssh-client)";

impl SshTarget {
    pub fn new(
        destination: &str,
        port: Option<u16>,
        identity_file: Option<PathBuf>,
        known_hosts: Option<PathBuf>,
        connect_timeout_secs: u64,
    ) -> Result<SshTarget, BadDestination> {
        let valid_part = |p: &str| {
            !p.is_empty()
                && !p.starts_with('-')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        let ok = match destination.split_once('@') {
            Some((user, host)) => valid_part(user) && valid_part(host),
            None => valid_part(destination),
        };
        if !ok {
            return Err(BadDestination {
                given: destination.to_owned(),
            });
        }
        Ok(SshTarget {
            destination: destination.to_owned(),
            port,
            identity_file,
            known_hosts,
            connect_timeout_secs: connect_timeout_secs.max(1),
        })
    }

    /// The host, without the user: how reports name the board.
    pub fn host(&self) -> &str {
        self.destination
            .split_once('@')
            .map_or(self.destination.as_str(), |(_, host)| host)
    }

    /// Options shared by `ssh` and `scp`.
    fn options(&self) -> Vec<OsString> {
        let mut options: Vec<OsString> = vec![
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={}", self.connect_timeout_secs).into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
        ];
        if let Some(known_hosts) = &self.known_hosts {
            let mut option = OsString::from("UserKnownHostsFile=");
            option.push(known_hosts);
            options.extend(["-o".into(), option]);
        }
        if let Some(identity) = &self.identity_file {
            options.extend([
                "-o".into(),
                "IdentitiesOnly=yes".into(),
                "-i".into(),
                identity.clone().into_os_string(),
            ]);
        }
        options
    }

    /// `ssh … DESTINATION -- 'arg' 'arg'…`: runs `remote` on the board.
    pub fn command(&self, remote: &[&str], timeout: Duration) -> ToolCommand {
        let mut argv = self.options();
        if let Some(port) = self.port {
            argv.extend(["-p".into(), port.to_string().into()]);
        }
        argv.push(self.destination.clone().into());
        argv.push("--".into());
        argv.push(
            remote
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ")
                .into(),
        );
        ToolCommand::new("ssh")
            .args(argv)
            .timeout(Some(timeout))
            .not_found_hint(HINT)
    }

    /// `scp … FILES DESTINATION:DIR/`: copies local files into a board directory.
    pub fn upload(&self, files: &[&Path], remote_dir: &str, timeout: Duration) -> ToolCommand {
        let mut argv = self.scp_options();
        argv.extend(files.iter().map(|f| f.as_os_str().to_owned()));
        argv.push(format!("{}:{remote_dir}/", self.destination).into());
        ToolCommand::new("scp")
            .args(argv)
            .timeout(Some(timeout))
            .not_found_hint(HINT)
    }

    /// `scp … DESTINATION:REMOTE LOCAL`: copies one board file here.
    pub fn download(&self, remote: &str, local: &Path, timeout: Duration) -> ToolCommand {
        let mut argv = self.scp_options();
        argv.push(format!("{}:{remote}", self.destination).into());
        argv.push(local.as_os_str().to_owned());
        ToolCommand::new("scp")
            .args(argv)
            .timeout(Some(timeout))
            .not_found_hint(HINT)
    }

    fn scp_options(&self) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec!["-q".into()];
        argv.extend(self.options());
        if let Some(port) = self.port {
            argv.extend(["-P".into(), port.to_string().into()]);
        }
        argv
    }
}

/// Quotes one argument for a POSIX shell: `'…'`, with `'` as `'\''`.
pub fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(argv: Vec<OsString>) -> Vec<String> {
        argv.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn commands_check_host_keys_in_batch_mode_and_quote_remote_arguments() {
        let target = SshTarget::new(
            "mendel@coral-dev",
            Some(2222),
            Some("/keys/id".into()),
            Some("/keys/known_hosts".into()),
            7,
        )
        .unwrap();
        assert_eq!(target.host(), "coral-dev");
        let ssh = target.command(&["python3", "it's.py"], Duration::from_secs(5));
        assert_eq!(
            strings(ssh.argv()),
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ConnectTimeout=7",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "UserKnownHostsFile=/keys/known_hosts",
                "-o",
                "IdentitiesOnly=yes",
                "-i",
                "/keys/id",
                "-p",
                "2222",
                "mendel@coral-dev",
                "--",
                r"'python3' 'it'\''s.py'",
            ]
        );
        let scp = target.upload(
            &[Path::new("/tmp/m.tflite")],
            "/tmp/x",
            Duration::from_secs(5),
        );
        let argv = strings(scp.argv());
        assert_eq!(argv[0], "scp");
        assert_eq!(argv[1], "-q");
        assert!(argv.windows(2).any(|w| w == ["-P", "2222"]));
        assert_eq!(
            &argv[argv.len() - 2..],
            ["/tmp/m.tflite", "mendel@coral-dev:/tmp/x/"]
        );
    }

    #[test]
    fn destinations_that_could_be_options_or_shell_are_refused() {
        for bad in [
            "-oProxyCommand=x",
            "a b",
            "user@",
            "@host",
            "x;rm",
            "a@b@c",
            "",
        ] {
            assert!(SshTarget::new(bad, None, None, None, 5).is_err(), "{bad}");
        }
        assert!(SshTarget::new("board", None, None, None, 5).is_ok());
        assert!(SshTarget::new("root@10.0.0.2", None, None, None, 5).is_ok());
    }
}
