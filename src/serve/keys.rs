//! API keys: a file of keys, one a line, plain or as `sha256:<hex>` of the key; `#` comments and
//! blank lines are ignored. Callers send `authorization: Bearer <key>`. A presented key is hashed
//! and compared with every stored digest in constant time, so neither the time taken nor the
//! order of the file tells anything about the keys. Keys are never logged: errors name the line,
//! never its text. The file is re-read when it changes, like a model file; a file that turns bad
//! keeps the previous keys.
use crate::error::{Error, Result};
use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The digests of the accepted keys.
#[derive(Debug, Default)]
pub struct KeySet {
    digests: Vec<[u8; 32]>,
}

impl KeySet {
    /// Parses a key file's text; errors name the line.
    pub fn parse(text: &str) -> std::result::Result<KeySet, String> {
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let digest = match line.strip_prefix("sha256:") {
                Some(hex_digest) => {
                    let bytes = hex::decode(hex_digest.trim())
                        .ok()
                        .filter(|b| b.len() == 32);
                    let Some(bytes) = bytes else {
                        return Err(format!(
                            "line {}: a hashed key is sha256: and 64 hex digits",
                            i + 1
                        ));
                    };
                    bytes.try_into().unwrap()
                }
                None => Sha256::digest(line.as_bytes()).into(),
            };
            digests.push(digest);
        }
        Ok(KeySet { digests })
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `key` is one of the keys. Constant time in the key and in which key matches.
    pub fn accepts(&self, key: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(key).into();
        let mut any = 0u8;
        for d in &self.digests {
            any |= u8::from(constant_time_eq(d, &presented));
        }
        any == 1
    }
}

/// Compares two digests without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // black_box keeps the compiler from turning the fold back into a short-circuiting compare.
    std::hint::black_box(diff) == 0
}

/// The bearer token of an `authorization` header value, if it is one.
pub fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| token.trim_ascii())
}

/// A key file and the keys it held when last read well.
pub struct ApiKeys {
    path: PathBuf,
    keys: ArcSwap<KeySet>,
    /// The file's fingerprint when last read, and the failure last reported.
    seen: Mutex<(Option<Fingerprint>, Option<String>)>,
}

/// A file's size and modification time.
type Fingerprint = (u64, Option<SystemTime>);

/// What a reload of the key file did.
#[derive(Debug, PartialEq)]
pub enum KeysReload {
    Unchanged,
    Loaded(usize),
    /// The file could not be read or parsed; the previous keys stay.
    Failed(String),
}

impl ApiKeys {
    /// Reads the key file; a missing or malformed file is an error at start-up.
    pub fn open(path: &Path) -> Result<ApiKeys> {
        let k = ApiKeys {
            path: path.to_path_buf(),
            keys: ArcSwap::from_pointee(KeySet::default()),
            seen: Mutex::new((None, None)),
        };
        match k.reload() {
            KeysReload::Failed(why) => Err(Error::Usage(format!("--api-keys {why}"))),
            _ => Ok(k),
        }
    }

    pub fn current(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.keys.load()
    }

    /// Re-reads the file if its size or modification time changed. A failure is reported once,
    /// not again on every poll while the file stays bad or missing.
    pub fn reload(&self) -> KeysReload {
        let mut seen = self.seen.lock().unwrap();
        let result = self.reread(&mut seen.0);
        match result {
            KeysReload::Failed(why) if seen.1.as_ref() == Some(&why) => KeysReload::Unchanged,
            KeysReload::Failed(why) => {
                seen.1 = Some(why.clone());
                KeysReload::Failed(why)
            }
            KeysReload::Loaded(n) => {
                seen.1 = None;
                KeysReload::Loaded(n)
            }
            KeysReload::Unchanged => KeysReload::Unchanged,
        }
    }

    fn reread(&self, seen: &mut Option<Fingerprint>) -> KeysReload {
        let fingerprint = match std::fs::metadata(&self.path) {
            Ok(m) => (m.len(), m.modified().ok()),
            Err(e) => return KeysReload::Failed(format!("{}: {e}", self.path.display())),
        };
        if *seen == Some(fingerprint) {
            return KeysReload::Unchanged;
        }
        *seen = Some(fingerprint);
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) => return KeysReload::Failed(format!("{}: {e}", self.path.display())),
        };
        match KeySet::parse(&text) {
            Ok(set) => {
                let n = set.len();
                self.keys.store(Arc::new(set));
                KeysReload::Loaded(n)
            }
            Err(why) => KeysReload::Failed(format!("{}: {why}", self.path.display())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_hashed_keys_are_accepted_and_nothing_else() {
        let hashed = hex::encode(Sha256::digest(b"second-key"));
        let set =
            KeySet::parse(&format!("# team keys\n\n  first-key  \nsha256:{hashed}\n")).unwrap();
        assert_eq!(set.len(), 2);
        assert!(set.accepts(b"first-key"));
        assert!(set.accepts(b"second-key"));
        for wrong in [
            &b""[..],
            b"first-ke",
            b"first-key ",
            b"FIRST-KEY",
            b"sha256:",
        ] {
            assert!(!set.accepts(wrong), "{wrong:?}");
        }
        assert!(!KeySet::default().accepts(b""));
    }

    #[test]
    fn a_malformed_hash_names_its_line_and_not_its_text() {
        let err = KeySet::parse("ok-key\nsha256:abc123\n").unwrap_err();
        assert_eq!(err, "line 2: a hashed key is sha256: and 64 hex digits");
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn the_file_reloads_on_change_and_a_bad_file_keeps_the_old_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, "one\n").unwrap();
        let keys = ApiKeys::open(&path).unwrap();
        assert!(keys.current().accepts(b"one"));
        assert_eq!(keys.reload(), KeysReload::Unchanged);
        std::fs::write(&path, "one\ntwo-two\n").unwrap();
        assert_eq!(keys.reload(), KeysReload::Loaded(2));
        assert!(keys.current().accepts(b"two-two"));
        std::fs::write(&path, "sha256:zz\n").unwrap();
        assert!(matches!(keys.reload(), KeysReload::Failed(m) if m.contains("line 1")));
        assert!(keys.current().accepts(b"two-two"), "the old keys stay");
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(keys.reload(), KeysReload::Failed(_)));
        // Still missing: not reported again on every poll.
        assert_eq!(keys.reload(), KeysReload::Unchanged);
        assert!(keys.current().accepts(b"one"));
        std::fs::write(&path, "three\n").unwrap();
        assert_eq!(keys.reload(), KeysReload::Loaded(1));
        assert!(keys.current().accepts(b"three") && !keys.current().accepts(b"one"));
        assert!(ApiKeys::open(&dir.path().join("none")).is_err());
    }
}
