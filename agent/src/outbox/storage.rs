//! Where the outbox keeps its bytes: a directory of files, or (tests) a simulated disk that
//! loses unsynced data and tears writes on a crash.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub trait Storage {
    /// File names in the outbox directory.
    fn list(&self) -> io::Result<Vec<String>>;
    fn read(&mut self, name: &str) -> io::Result<Vec<u8>>;
    /// Read `len` bytes at `offset`.
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Append to a file, creating it.
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Make everything appended to `name` durable.
    fn sync(&mut self, name: &str) -> io::Result<()>;
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()>;
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Replace a small file atomically and durably (temp + fsync + rename).
    fn write_atomic(&mut self, name: &str, bytes: &[u8]) -> io::Result<()>;
    /// Free bytes on the filesystem (None: unknown).
    fn free_bytes(&self) -> Option<u64>;
}

/// A real directory. Open append handles are cached (one per segment, at most a few).
pub struct DirStorage {
    dir: PathBuf,
    handles: BTreeMap<String, File>,
}

impl DirStorage {
    pub fn open(dir: &Path) -> io::Result<DirStorage> {
        std::fs::create_dir_all(dir)?;
        Ok(DirStorage {
            dir: dir.to_path_buf(),
            handles: BTreeMap::new(),
        })
    }

    fn handle(&mut self, name: &str) -> io::Result<&mut File> {
        if !self.handles.contains_key(name) {
            // Only the active segment is written; older handles are closed.
            self.handles.clear();
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .open(self.dir.join(name))?;
            self.handles.insert(name.to_string(), f);
        }
        self.handles
            .get_mut(name)
            .ok_or_else(|| io::Error::other("handle vanished"))
    }
}

impl Storage for DirStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            if let Some(n) = e?.file_name().to_str() {
                v.push(n.to_string());
            }
        }
        v.sort();
        Ok(v)
    }
    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(name))
    }
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut f = File::open(self.dir.join(name))?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0; len];
        f.read_exact(&mut buf)?;
        Ok(buf)
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.handle(name)?.write_all(bytes)
    }
    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.handle(name)?.sync_data()
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.handles.remove(name);
        let f = OpenOptions::new().write(true).open(self.dir.join(name))?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.handles.remove(name);
        std::fs::remove_file(self.dir.join(name))
    }
    fn write_atomic(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(name))?;
        File::open(&self.dir)?.sync_all()
    }
    fn free_bytes(&self) -> Option<u64> {
        fs4::available_space(&self.dir).ok()
    }
}

/// A simulated disk for property tests: `crash` keeps synced bytes and a random-length prefix
/// of the unsynced ones (a torn write), like a power cut.
#[derive(Default, Clone, Debug)]
pub struct SimStorage {
    files: BTreeMap<String, (Vec<u8>, usize)>, // contents, synced length
    pub free: Option<u64>,
    /// When set, appends fail with "no space" (disk full).
    pub full: bool,
}

impl SimStorage {
    /// Power cut: each file keeps its synced part plus `keep(unsynced_len)` unsynced bytes.
    pub fn crash(&mut self, mut keep: impl FnMut(usize) -> usize) {
        for (data, synced) in self.files.values_mut() {
            let unsynced = data.len() - *synced;
            let k = keep(unsynced).min(unsynced);
            data.truncate(*synced + k);
            *synced = data.len();
        }
    }
    pub fn total_bytes(&self) -> u64 {
        self.files.values().map(|(d, _)| d.len() as u64).sum()
    }
}

impl Storage for SimStorage {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.keys().cloned().collect())
    }
    fn read(&mut self, name: &str) -> io::Result<Vec<u8>> {
        self.files
            .get(name)
            .map(|(d, _)| d.clone())
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let d = &self
            .files
            .get(name)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?
            .0;
        d.get(offset as usize..offset as usize + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        if self.full {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device",
            ));
        }
        self.files
            .entry(name.to_string())
            .or_default()
            .0
            .extend_from_slice(bytes);
        Ok(())
    }
    fn sync(&mut self, name: &str) -> io::Result<()> {
        if let Some((d, s)) = self.files.get_mut(name) {
            *s = d.len();
        }
        Ok(())
    }
    fn truncate(&mut self, name: &str, len: u64) -> io::Result<()> {
        if let Some((d, s)) = self.files.get_mut(name) {
            d.truncate(len as usize);
            *s = (*s).min(d.len());
        }
        Ok(())
    }
    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.files.remove(name);
        Ok(())
    }
    fn write_atomic(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.files
            .insert(name.to_string(), (bytes.to_vec(), bytes.len()));
        Ok(())
    }
    fn free_bytes(&self) -> Option<u64> {
        self.free
    }
}
