//! ModelRegistry: every model in a repository folder (`DIR/<name>/<version>/model.json`), loaded,
//! validated and published as one immutable [`Catalog`] behind an atomic pointer. A reload builds a
//! new catalog and swaps it in; a request holds the `Arc` of the catalog (and model) it started
//! with, so in-flight calls finish on their model. A file that fails to load is logged and counted,
//! and whatever served before keeps serving.
use crate::error::{Error, Result};
use crate::model::{ChurnModel, versions};
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// An immutable snapshot of the loaded models.
#[derive(Debug, Default)]
pub struct Catalog {
    /// name -> version -> model.
    models: BTreeMap<String, BTreeMap<u64, Arc<ChurnModel>>>,
    default: Option<String>,
}

impl Catalog {
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// "" = the default model, "name" = its highest version, "name@version" = exactly that one.
    pub fn resolve(&self, spec: &str) -> Result<&Arc<ChurnModel>> {
        let not_found = || Error::ModelNotFound(self.describe_missing(spec));
        let (name, version) = match spec.split_once('@') {
            Some((n, v)) => (n, Some(v.parse::<u64>().map_err(|_| not_found())?)),
            None => (spec, None),
        };
        let name = if name.is_empty() {
            self.default.as_deref().ok_or_else(|| self.no_default())?
        } else {
            name
        };
        let versions = self.models.get(name).ok_or_else(not_found)?;
        match version {
            Some(v) => versions.get(&v).ok_or_else(not_found),
            None => versions.values().next_back().ok_or_else(not_found),
        }
    }

    /// A request that names no model, on a server with several and no --default-model.
    fn no_default(&self) -> Error {
        let served: Vec<&str> = self.serving().map(|m| m.id()).collect();
        if served.is_empty() {
            return Error::ModelNotFound("(default): no model is loaded".into());
        }
        Error::ModelNotFound(format!(
            "the request names no model and this server has several ({}) with no default: name one in the request's model field, or start the server with --default-model NAME",
            served.join(", ")
        ))
    }

    fn describe_missing(&self, spec: &str) -> String {
        let served: Vec<&str> = self.serving().map(|m| m.id()).collect();
        let spec = if spec.is_empty() { "(default)" } else { spec };
        if served.is_empty() {
            format!("{spec}: no model is loaded")
        } else {
            format!("{spec}: the server has {}", served.join(", "))
        }
    }

    /// The serving (highest) version of each name, by name.
    pub fn serving(&self) -> impl Iterator<Item = &Arc<ChurnModel>> {
        self.models.values().filter_map(|v| v.values().next_back())
    }

    /// Every loaded version of every name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ChurnModel>> {
        self.models.values().flat_map(|v| v.values())
    }

    /// The loaded versions of one name, lowest first.
    pub fn versions(&self, name: &str) -> impl Iterator<Item = u64> + '_ {
        self.models
            .get(name)
            .into_iter()
            .flat_map(|v| v.keys().copied())
    }

    pub fn default_name(&self) -> Option<&str> {
        self.default.as_deref()
    }
}

/// What one reload changed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReloadReport {
    /// "name@version" of files newly loaded or changed and reloaded.
    pub loaded: Vec<String>,
    /// Files that failed to load, with the reason; the previous version (if any) keeps serving.
    pub failed: Vec<(PathBuf, String)>,
    /// "name@version" whose files disappeared.
    pub removed: Vec<String>,
    /// The folder could not be read (reported once per distinct reason, not on every poll).
    pub folder_unreadable: Option<String>,
    /// The folder could not be read on the previous reload and can be again.
    pub folder_restored: bool,
}

impl ReloadReport {
    pub fn changed(&self) -> bool {
        !self.loaded.is_empty() || !self.removed.is_empty()
    }
}

/// A file's identity for change detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
}

pub struct ModelRegistry {
    dir: PathBuf,
    default_name: Option<String>,
    catalog: ArcSwap<Catalog>,
    /// What the last reload saw; one reload runs at a time.
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    /// Fingerprint of each file as last seen, loaded or not.
    files: HashMap<PathBuf, Fingerprint>,
    /// Why the folder could not be read last time; the same reason is reported only once, not on
    /// every poll while a volume is away.
    folder_error: Option<String>,
}

impl ModelRegistry {
    /// Opens a repository folder and loads what it holds. `default_name` picks the model for
    /// requests that name none; without it, the only model, and with several none (such requests
    /// are refused naming the models and the flag, never given an arbitrary one).
    pub fn open(dir: &Path, default_name: Option<String>) -> Result<(ModelRegistry, ReloadReport)> {
        if !dir.is_dir() {
            return Err(Error::model(dir, "the model repository is not a folder"));
        }
        let reg = ModelRegistry {
            dir: dir.to_path_buf(),
            default_name,
            catalog: ArcSwap::from_pointee(Catalog::default()),
            seen: Mutex::new(Seen::default()),
        };
        let report = reg.reload();
        Ok((reg, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current catalog; hold it for the whole request.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Scans the folder, loads new and changed files, drops removed ones, and swaps in the new
    /// catalog if anything changed. A folder that has vanished keeps the current models serving.
    pub fn reload(&self) -> ReloadReport {
        let mut seen = self.seen.lock().unwrap();
        let mut report = ReloadReport::default();
        let current = self.catalog.load_full();
        let files = match scan(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                let why = e.to_string();
                if seen.folder_error.as_ref() != Some(&why) {
                    report.folder_unreadable = Some(why.clone());
                    seen.folder_error = Some(why);
                }
                return report;
            }
        };
        report.folder_restored = seen.folder_error.take().is_some();
        let seen = &mut seen.files;
        let mut next: BTreeMap<String, BTreeMap<u64, Arc<ChurnModel>>> = BTreeMap::new();
        for (name, version, path) in &files {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let fp = Fingerprint {
                len: meta.len(),
                modified: meta.modified().ok(),
            };
            let existing = current.models.get(name).and_then(|v| v.get(version));
            let unchanged = seen.get(path) == Some(&fp);
            let model = if unchanged {
                // Loaded before (keep it), or failed before (already reported; keep the old one).
                existing.cloned()
            } else {
                seen.insert(path.clone(), fp);
                match ChurnModel::load(path) {
                    Ok(m) => {
                        report.loaded.push(format!("{name}@{version}"));
                        Some(Arc::new(m.with_identity(name, *version)))
                    }
                    Err(e) => {
                        report.failed.push((path.clone(), e.to_string()));
                        existing.cloned()
                    }
                }
            };
            if let Some(m) = model {
                next.entry(name.clone()).or_default().insert(*version, m);
            }
        }
        for m in current.all() {
            let (name, version) = (&m.file().name, m.file().version);
            if !next.get(name).is_some_and(|v| v.contains_key(&version)) {
                report.removed.push(m.id().to_string());
            }
        }
        seen.retain(|p, _| files.iter().any(|(_, _, f)| f == p));
        if report.changed() {
            let default = match &self.default_name {
                Some(d) => Some(d.clone()),
                None if next.len() == 1 => next.keys().next().cloned(),
                None => None,
            };
            self.catalog.store(Arc::new(Catalog {
                models: next,
                default,
            }));
        }
        report
    }
}

/// Every `DIR/<name>/<version>/model.json`.
fn scan(dir: &Path) -> Result<Vec<(String, u64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !path.is_dir() || name.starts_with('.') {
            continue;
        }
        for v in versions(&path)? {
            let file = path.join(v.to_string()).join("model.json");
            if file.is_file() {
                out.push((name.clone(), v, file));
            }
        }
    }
    out.sort();
    Ok(out)
}
