//! Atomic files: every file churn writes (model files, scores, feature tables) is written under a
//! temporary name in the same folder, synced and renamed into place, so a reader sees the old file
//! or the new one, never a part. A run that is killed leaves its temporary file behind; the next
//! run writing the same path removes those whose process is gone.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A file written under a temporary name beside its destination; removed unless persisted.
pub struct TempFile {
    tmp: PathBuf,
    keep: bool,
}

impl TempFile {
    /// `.NAME.TAG-PID` in the folder of `path`. Temporary files of `path` left by processes that
    /// no longer run are removed first.
    pub fn beside(path: &Path, tag: &str) -> TempFile {
        let (dir, name) = dir_and_name(path);
        remove_stale(&dir, &name);
        TempFile {
            tmp: dir.join(format!(".{name}.{tag}-{}", std::process::id())),
            keep: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.tmp
    }

    pub fn create(&self) -> Result<std::fs::File> {
        std::fs::File::create(&self.tmp).map_err(|e| Error::io(&self.tmp, e))
    }

    /// Syncs the file to disk and renames it to `path`.
    pub fn persist(mut self, path: &Path) -> Result<()> {
        std::fs::File::open(&self.tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, path).map_err(|e| Error::io(path, e))?;
        self.keep = true;
        if let Ok(d) = std::fs::File::open(dir_and_name(path).0) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes bytes to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = TempFile::beside(path, "tmp");
    let mut f = tmp.create()?;
    f.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    drop(f);
    tmp.persist(path)
}

fn dir_and_name(path: &Path) -> (PathBuf, String) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("output")
        .to_string();
    (dir, name)
}

/// The process id a temporary name of `name` ends with (`.NAME.TAG-PID`), if it is one.
fn temp_owner(file: &str, name: &str) -> Option<u32> {
    temp_parts(file)
        .filter(|(n, _)| *n == name)
        .map(|(_, pid)| pid)
}

/// The file a temporary name is for, and its writer's process id (`.NAME.TAG-PID`).
fn temp_parts(file: &str) -> Option<(&str, u32)> {
    let rest = file.strip_prefix('.')?;
    let (rest, pid) = rest.rsplit_once('-')?;
    let (name, tag) = rest.rsplit_once('.')?;
    if name.is_empty() || tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((name, pid.parse().ok()?))
}

/// Removes the temporary files in `dir` of every file `is_mine` accepts whose writing process is
/// gone (a folder of runs: a killed run's file is cleared by the next run of any date).
pub fn remove_stale_in(dir: &Path, is_mine: impl Fn(&str) -> bool) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        if let Some((name, _)) = entry.file_name().to_str().and_then(temp_parts)
            && is_mine(name)
        {
            remove_stale(dir, name);
        }
    }
}

/// Whether a process with this id exists (signal 0 checks without sending anything).
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for the process; it has no other effect.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes temporary files of `name` in `dir` whose writing process is gone.
fn remove_stale(dir: &Path, name: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in rd.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let stale = temp_owner(file, name).is_some_and(|pid| pid != me && !process_exists(pid));
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = %entry.path().display(), "removed a temporary file left by an ended run");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_only_for_their_file() {
        assert_eq!(temp_owner(".s.csv.tmp-123", "s.csv"), Some(123));
        assert_eq!(temp_owner(".s.csv.ranked-9", "s.csv"), Some(9));
        assert_eq!(temp_owner(".s.csv.tmp-x", "s.csv"), None);
        assert_eq!(temp_owner(".t.csv.tmp-1", "s.csv"), None);
        assert_eq!(temp_owner("s.csv", "s.csv"), None);
        assert_eq!(temp_owner(".s.csv.rejects.csv", "s.csv"), None);
        assert_eq!(
            temp_parts(".2020-01-01.parquet.tmp-77"),
            Some(("2020-01-01.parquet", 77))
        );
        assert_eq!(temp_parts(".tmp-77"), None);
    }

    #[test]
    fn stale_temp_files_go_and_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("s.csv");
        // A process that has ended: a child we waited for.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".s.csv.tmp-{dead}"));
        let other = dir.path().join(format!(".t.csv.tmp-{dead}"));
        for p in [&stale, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        write_atomic(&out, b"done").unwrap();
        assert!(!stale.exists(), "the dead run's file is removed");
        assert!(other.exists(), "another output's file is not touched");
        assert_eq!(std::fs::read(&out).unwrap(), b"done");
    }
}
