//! Where things live in the bucket. A remote is `s3://BUCKET[/PREFIX]`;
//! under its prefix:
//!
//! ```text
//! PREFIX/blobs/ab/ab12…(64 hex)   one object per distinct file content, named by its BLAKE3
//! PREFIX/entries/KEY.json         one entry document per cache key, written last
//! ```
//!
//! Blobs are immutable and shared by every entry that holds the same bytes;
//! an entry document names its blobs, so an entry is visible only once all
//! of them are uploaded.

use object_store::path::Path as ObjectPath;

use crate::RemoteError;

/// A parsed `s3://bucket/prefix` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl RemoteUrl {
    /// Parses `s3://bucket` or `s3://bucket/some/prefix`.
    pub fn parse(text: &str) -> Result<RemoteUrl, RemoteError> {
        let invalid = |reason: &str| RemoteError::InvalidUrl {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("expected `s3://BUCKET` or `s3://BUCKET/PREFIX`"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_bucket(bucket) {
            return Err(invalid(
                "a bucket name has 3 to 63 characters: lower-case letters, digits, `.` and `-`, starting and ending with a letter or digit",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|part| part == "." || part == ".." || (part.is_empty() && !prefix.is_empty()))
        {
            return Err(invalid(
                "the prefix may not hold empty, `.` or `..` segments",
            ));
        }
        if prefix.chars().any(|c| c.is_control() || c == '\\') {
            return Err(invalid(
                "the prefix may not hold control characters or `\\`",
            ));
        }
        Ok(RemoteUrl {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The object of a blob: `PREFIX/blobs/ab/ab12…`.
    pub fn blob(&self, digest: &str) -> Result<ObjectPath, RemoteError> {
        if !is_digest(digest) {
            return Err(RemoteError::InvalidDigest(digest.to_owned()));
        }
        Ok(self.join(&format!("blobs/{}/{digest}", &digest[..2])))
    }

    /// The entry document of a cache key: `PREFIX/entries/KEY.json`.
    pub fn entry(&self, key: &str) -> Result<ObjectPath, RemoteError> {
        if !is_digest(key) {
            return Err(RemoteError::InvalidDigest(key.to_owned()));
        }
        Ok(self.join(&format!("entries/{key}.json")))
    }

    /// The prefix itself (what the reachability check lists).
    pub fn root(&self) -> Option<ObjectPath> {
        (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()))
    }

    fn join(&self, relative: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix))
        }
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

fn valid_bucket(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
}

/// A lower-case hex BLAKE3 digest (64 characters); cache keys have the same form.
pub fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

    #[test]
    fn blobs_and_entries_sit_under_the_prefix() {
        let url = RemoteUrl::parse("s3://team-cache/edgepipe/v1/").unwrap();
        assert_eq!(url.bucket, "team-cache");
        assert_eq!(url.prefix, "edgepipe/v1");
        assert_eq!(url.to_string(), "s3://team-cache/edgepipe/v1");
        assert_eq!(
            url.blob(DIGEST).unwrap().as_ref(),
            format!("edgepipe/v1/blobs/ab/{DIGEST}")
        );
        assert_eq!(
            url.entry(DIGEST).unwrap().as_ref(),
            format!("edgepipe/v1/entries/{DIGEST}.json")
        );
        assert_eq!(url.root().unwrap().as_ref(), "edgepipe/v1");
    }

    #[test]
    fn a_bare_bucket_uses_its_root() {
        let url = RemoteUrl::parse("s3://cache").unwrap();
        assert_eq!(url.prefix, "");
        assert_eq!(url.root(), None);
        assert_eq!(
            url.entry(DIGEST).unwrap().as_ref(),
            format!("entries/{DIGEST}.json")
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let reason = |text: &str| match RemoteUrl::parse(text).unwrap_err() {
            RemoteError::InvalidUrl { reason, .. } => reason,
            other => panic!("{other}"),
        };
        assert!(reason("https://x/y").starts_with("expected `s3://BUCKET`"));
        assert!(reason("s3://UPPER/x").starts_with("a bucket name has 3 to 63"));
        assert!(reason("s3://ab").starts_with("a bucket name"));
        assert!(reason("s3://bucket/a//b").contains("empty, `.` or `..`"));
        assert!(reason("s3://bucket/a/../b").contains("`..`"));
    }

    #[test]
    fn only_hex_digests_name_objects() {
        let url = RemoteUrl::parse("s3://cache/p").unwrap();
        assert!(matches!(
            url.blob("../../etc"),
            Err(RemoteError::InvalidDigest(_))
        ));
        assert!(matches!(
            url.entry(&DIGEST.to_uppercase()),
            Err(RemoteError::InvalidDigest(_))
        ));
    }
}
