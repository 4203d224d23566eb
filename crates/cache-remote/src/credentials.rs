//! The standard AWS configuration chain, as the AWS CLI and SDKs read it:
//! credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
//! `AWS_SESSION_TOKEN`, else from the profile (`AWS_PROFILE`, else
//! `default`) in `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`) or
//! `~/.aws/config` (`AWS_CONFIG_FILE`); web-identity and container
//! credentials (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_CONTAINER_CREDENTIALS_*`)
//! are handed to `object_store`. Region and endpoint come from the same
//! chain. A profile named explicitly (in the cache settings) wins over the
//! environment's keys, as `--profile` does for the AWS CLI.
//!
//! Secrets live only in memory: [`Secret`] never prints its value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::RemoteError;

/// A value that must not appear in logs or messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Where the credentials came from (for messages; never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// A profile section of a shared credentials or config file.
    Profile { name: String, file: PathBuf },
    /// Web identity or container credentials, resolved by object_store.
    Delegated(&'static str),
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Environment => f.write_str("from AWS_ACCESS_KEY_ID"),
            CredentialSource::Profile { name, file } => {
                write!(f, "from profile `{name}` in {}", file.display())
            }
            CredentialSource::Delegated(what) => write!(f, "from {what}"),
        }
    }
}

/// Static keys, or a note that object_store resolves them itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
    pub source: CredentialSource,
}

/// What the chain resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// `None` when delegated (see [`Resolved::delegated`]).
    pub credentials: Option<Credentials>,
    pub delegated: Option<CredentialSource>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
}

/// The process environment and home directory the chain reads (tests pass their own).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub vars: BTreeMap<String, String>,
    pub home: Option<PathBuf>,
}

impl Env {
    /// This process's environment.
    pub fn process() -> Env {
        Env {
            vars: std::env::vars().collect(),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn aws_file(&self, var: &str, name: &str) -> Option<PathBuf> {
        self.get(var)
            .map(PathBuf::from)
            .or_else(|| self.home.as_ref().map(|h| h.join(".aws").join(name)))
    }
}

/// Resolves credentials, region and endpoint for `profile` (the settings'
/// explicit profile, if any).
pub fn resolve(env: &Env, profile: Option<&str>) -> Result<Resolved, RemoteError> {
    let explicit = profile.is_some();
    let profile = profile
        .or_else(|| env.get("AWS_PROFILE"))
        .unwrap_or("default")
        .to_owned();
    let credentials_file = env.aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    let config_file = env.aws_file("AWS_CONFIG_FILE", "config");
    let credentials_ini = read_ini(credentials_file.as_deref())?;
    let config_ini = read_ini(config_file.as_deref())?;
    // `[name]` in the credentials file; `[profile name]` (or `[default]`) in config.
    let from_credentials = credentials_ini.get(&profile);
    let config_section = if profile == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile}")
    };
    let from_config = config_ini.get(&config_section);
    let profile_value = |key: &str| {
        from_credentials
            .and_then(|s| s.get(key))
            .or_else(|| from_config.and_then(|s| s.get(key)))
            .cloned()
    };
    let profile_credentials = || -> Option<Credentials> {
        let (section, file) = match (from_credentials, from_config) {
            (Some(s), _) if s.contains_key("aws_access_key_id") => (s, credentials_file.clone()?),
            (_, Some(s)) if s.contains_key("aws_access_key_id") => (s, config_file.clone()?),
            _ => return None,
        };
        Some(Credentials {
            access_key_id: section.get("aws_access_key_id")?.clone(),
            secret_access_key: Secret::new(section.get("aws_secret_access_key")?.clone()),
            session_token: section.get("aws_session_token").cloned().map(Secret::new),
            source: CredentialSource::Profile {
                name: profile.clone(),
                file,
            },
        })
    };
    let env_credentials = || -> Option<Credentials> {
        Some(Credentials {
            access_key_id: env.get("AWS_ACCESS_KEY_ID")?.to_owned(),
            secret_access_key: Secret::new(env.get("AWS_SECRET_ACCESS_KEY")?),
            session_token: env.get("AWS_SESSION_TOKEN").map(Secret::new),
            source: CredentialSource::Environment,
        })
    };
    let credentials = if explicit {
        profile_credentials().or_else(env_credentials)
    } else {
        env_credentials().or_else(profile_credentials)
    };
    let delegated = if credentials.is_some() {
        None
    } else if env.get("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() {
        Some(CredentialSource::Delegated("AWS_WEB_IDENTITY_TOKEN_FILE"))
    } else if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some()
    {
        Some(CredentialSource::Delegated("container credentials"))
    } else {
        None
    };
    if credentials.is_none() && delegated.is_none() {
        let files: Vec<String> = [&credentials_file, &config_file]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        return Err(RemoteError::NoCredentials {
            looked: format!(
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and profile `{profile}` has no keys in {}",
                if files.is_empty() {
                    "any AWS file (HOME is not set)".to_owned()
                } else {
                    files.join(" or ")
                }
            ),
        });
    }
    let region = env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
        .map(str::to_owned)
        .or_else(|| profile_value("region"));
    let endpoint = env
        .get("AWS_ENDPOINT_URL_S3")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .or_else(|| env.get("AWS_ENDPOINT"))
        .map(str::to_owned)
        .or_else(|| profile_value("endpoint_url"));
    Ok(Resolved {
        credentials,
        delegated,
        region,
        endpoint,
    })
}

type Ini = BTreeMap<String, BTreeMap<String, String>>;

fn read_ini(path: Option<&Path>) -> Result<Ini, RemoteError> {
    let Some(path) = path else {
        return Ok(Ini::new());
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::new()),
        Err(source) => Err(RemoteError::Io {
            context: format!("reading {}", path.display()),
            source,
        }),
    }
}

/// The AWS shared-file dialect of INI: `[section]`, `key = value`, `#` and
/// `;` comments; indented lines continue a nested block (service-specific
/// settings such as `s3 =`), which this reader skips.
fn parse_ini(text: &str) -> Ini {
    let mut ini = Ini::new();
    let mut section: Option<String> = None;
    for raw in text.lines() {
        let nested = raw.starts_with([' ', '\t']);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            ini.entry(name.clone()).or_default();
            section = Some(name);
            continue;
        }
        if nested {
            continue;
        }
        if let (Some(section), Some((key, value))) = (&section, line.split_once('=')) {
            let value = value.trim();
            if value.is_empty() {
                continue; // the head of a nested block
            }
            ini.entry(section.clone())
                .or_default()
                .insert(key.trim().to_ascii_lowercase(), value.to_owned());
        }
    }
    ini
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], home: Option<&Path>) -> Env {
        Env {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: home.map(Path::to_path_buf),
        }
    }

    fn aws_home(credentials: &str, config: &str) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::write(home.path().join(".aws/credentials"), credentials).unwrap();
        std::fs::write(home.path().join(".aws/config"), config).unwrap();
        home
    }

    #[test]
    fn environment_keys_come_first() {
        let home = aws_home(
            "[default]\naws_access_key_id = FILE\naws_secret_access_key = s\n",
            "",
        );
        let resolved = resolve(
            &env(
                &[
                    ("AWS_ACCESS_KEY_ID", "ENVKEY"),
                    ("AWS_SECRET_ACCESS_KEY", "envsecret"),
                    ("AWS_SESSION_TOKEN", "tok"),
                    ("AWS_REGION", "garage"),
                    ("AWS_ENDPOINT_URL", "http://127.0.0.1:3900"),
                ],
                Some(home.path()),
            ),
            None,
        )
        .unwrap();
        let credentials = resolved.credentials.unwrap();
        assert_eq!(credentials.access_key_id, "ENVKEY");
        assert_eq!(credentials.secret_access_key.expose(), "envsecret");
        assert_eq!(credentials.session_token.unwrap().expose(), "tok");
        assert_eq!(credentials.source, CredentialSource::Environment);
        assert_eq!(resolved.region.as_deref(), Some("garage"));
        assert_eq!(resolved.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
    }

    #[test]
    fn profiles_come_from_the_shared_files() {
        let home = aws_home(
            "# team keys\n[default]\naws_access_key_id=DEF\naws_secret_access_key=defsecret\n\n[ci]\naws_access_key_id = CIKEY\naws_secret_access_key = cisecret\n",
            "[default]\nregion = eu-west-1\n[profile ci]\nregion = garage\nendpoint_url = http://127.0.0.1:3900\ns3 =\n  addressing_style = path\n",
        );
        let resolved = resolve(&env(&[("AWS_PROFILE", "ci")], Some(home.path())), None).unwrap();
        let credentials = resolved.credentials.unwrap();
        assert_eq!(credentials.access_key_id, "CIKEY");
        assert_eq!(credentials.secret_access_key.expose(), "cisecret");
        assert_eq!(
            credentials.source,
            CredentialSource::Profile {
                name: "ci".into(),
                file: home.path().join(".aws/credentials")
            }
        );
        assert_eq!(resolved.region.as_deref(), Some("garage"));
        assert_eq!(resolved.endpoint.as_deref(), Some("http://127.0.0.1:3900"));

        let default = resolve(&env(&[], Some(home.path())), None).unwrap();
        assert_eq!(default.credentials.unwrap().access_key_id, "DEF");
        assert_eq!(default.region.as_deref(), Some("eu-west-1"));
        assert_eq!(default.endpoint, None);
    }

    #[test]
    fn an_explicit_profile_wins_over_environment_keys() {
        let home = aws_home(
            "[ci]\naws_access_key_id = CIKEY\naws_secret_access_key = x\n",
            "",
        );
        let vars = [
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "y"),
        ];
        let resolved = resolve(&env(&vars, Some(home.path())), Some("ci")).unwrap();
        assert_eq!(resolved.credentials.unwrap().access_key_id, "CIKEY");
    }

    #[test]
    fn keys_in_the_config_file_and_custom_file_locations_count() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cfg");
        std::fs::write(
            &config,
            "[profile build]\naws_access_key_id = CFGKEY\naws_secret_access_key = z\n",
        )
        .unwrap();
        let resolved = resolve(
            &env(
                &[
                    ("AWS_CONFIG_FILE", config.to_str().unwrap()),
                    ("AWS_PROFILE", "build"),
                ],
                None,
            ),
            None,
        )
        .unwrap();
        let credentials = resolved.credentials.unwrap();
        assert_eq!(credentials.access_key_id, "CFGKEY");
        assert_eq!(
            credentials.source,
            CredentialSource::Profile {
                name: "build".into(),
                file: config
            }
        );
    }

    #[test]
    fn no_credentials_says_where_it_looked() {
        let home = aws_home(
            "[other]\naws_access_key_id = A\naws_secret_access_key = B\n",
            "",
        );
        let err = resolve(
            &env(&[("AWS_ACCESS_KEY_ID", "only-id")], Some(home.path())),
            None,
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set"),
            "{text}"
        );
        assert!(text.contains("profile `default`"), "{text}");
        assert!(text.contains(".aws/credentials"), "{text}");
        let delegated = resolve(
            &env(&[("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token")], None),
            None,
        )
        .unwrap();
        assert_eq!(
            delegated.delegated,
            Some(CredentialSource::Delegated("AWS_WEB_IDENTITY_TOKEN_FILE"))
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(…)");
    }
}
