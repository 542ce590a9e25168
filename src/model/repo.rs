//! Models on disk: a model folder holds numbered versions (`DIR/<version>/model.json`); the highest
//! serves. Finding a model's file, listing versions and saving a new version atomically.
use super::file::ModelFile;
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use std::path::{Path, PathBuf};

/// `model.json` itself, a folder holding `model.json`, or a model folder whose highest numeric
/// subfolder holds it.
pub fn resolve_model_path(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.exists() {
        return Err(Error::model(
            path,
            format!("no such file or folder{}", models_nearby(path)),
        ));
    }
    let direct = path.join("model.json");
    if direct.is_file() {
        return Ok(direct);
    }
    match latest_version(path)? {
        Some(v) => Ok(path.join(v.to_string()).join("model.json")),
        None => Err(Error::model(
            path,
            format!(
                "no model.json here nor in any numeric version folder{}",
                models_in(path)
            ),
        )),
    }
}

/// Whether `dir` is a model folder: a model.json, or a numeric version folder holding one.
fn is_model_folder(dir: &Path) -> bool {
    dir.join("model.json").is_file() || latest_version(dir).ok().flatten().is_some()
}

/// "; models in DIR: a, b" for the model folders beside a path that does not exist (or "").
fn models_nearby(path: &Path) -> String {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    models_in(parent)
}

/// "; models in DIR: a, b" for the model folders inside `dir` (or "" when there are none).
fn models_in(dir: &Path) -> String {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return String::new();
    };
    let mut found: Vec<String> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && is_model_folder(p))
        .map(|p| p.display().to_string())
        .collect();
    found.sort();
    if found.is_empty() {
        String::new()
    } else {
        format!("; models in {}: {}", dir.display(), found.join(", "))
    }
}

/// The highest numeric subfolder of `dir` that holds a model.json.
pub fn latest_version(dir: &Path) -> Result<Option<u64>> {
    Ok(versions(dir)?
        .into_iter()
        .filter(|v| dir.join(v.to_string()).join("model.json").is_file())
        .max())
}

/// Every numeric subfolder name of `dir`.
pub fn versions(dir: &Path) -> Result<Vec<u64>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.path().is_dir()
            && let Some(v) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u64>().ok())
        {
            out.push(v);
        }
    }
    Ok(out)
}

/// Writes `file` as `dir/<next version>/model.json`, atomically (temporary file, fsync, rename),
/// and returns its path. The version in the file is set to the folder's number.
pub fn save_new_version(dir: &Path, file: &mut ModelFile) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut v = versions(dir)?.into_iter().max().unwrap_or(0) + 1;
    let vdir = loop {
        let candidate = dir.join(v.to_string());
        match std::fs::create_dir(&candidate) {
            Ok(()) => break candidate,
            // Another trainer took this number first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => v += 1,
            Err(e) => return Err(Error::io(&candidate, e)),
        }
    };
    file.version = v;
    let path = vdir.join("model.json");
    write_atomic(&path, &to_json(file))?;
    Ok(path)
}

pub fn to_json(file: &ModelFile) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(file).expect("model file serialises");
    out.push(b'\n');
    out
}
