//! A throwaway PostgreSQL server in a directory of its own (Debian's `postgresql` package):
//! for the tests, the fleet benchmark and trying the ingest out. Stopped when dropped.
//!
//! PostgreSQL refuses to run as root; as root the server runs as the `postgres` user that
//! Debian's package creates.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LocalPostgres {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

/// Where Debian keeps the server binaries (newest major version first).
fn bin_dir() -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| anyhow::anyhow!("/usr/lib/postgresql: {e}; fix: apt-get install postgresql"))?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").is_file())
        .collect();
    dirs.sort();
    dirs.pop().ok_or_else(|| {
        anyhow::anyhow!("no PostgreSQL server found; fix: apt-get install postgresql")
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Run a server binary, as `postgres` when we are root.
fn command(bin: &Path) -> Command {
    if is_root() {
        // setpriv execs (runuser would stay in between and keep the signals to itself).
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
            .arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

impl LocalPostgres {
    /// initdb into `dir` (created; must not exist yet or be empty) and start on `port`
    /// (loopback only, trust authentication for the `vitrine` role). `durable`: fsync on, as
    /// a production server; off for tests.
    pub fn start(dir: &Path, port: u16, durable: bool) -> anyhow::Result<LocalPostgres> {
        let bin = bin_dir()?;
        std::fs::create_dir_all(dir)?;
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir)
                .status()?
                .success();
            anyhow::ensure!(ok, "chown postgres {}", dir.display());
        }
        let data = dir.join("data");
        let out = command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "vitrine", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fsync = if durable { "on" } else { "off" };
        let child = command(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                &format!("fsync={fsync}"),
            ])
            .args(["-c", "max_connections=50"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("server.log"))?))
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "PostgreSQL did not start (see {}/server.log)",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let pg = LocalPostgres {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        // The server accepts connections a moment before it accepts logins.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(bin.join("psql"))
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "vitrine",
                    "-d",
                    "postgres",
                    "-qAtc",
                ])
                .arg("CREATE DATABASE vitrine")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?
                .success();
            if ok {
                return Ok(pg);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "PostgreSQL does not accept logins"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The connection string of the `vitrine` database.
    pub fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=vitrine dbname=vitrine",
            self.port
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        // SIGTERM through kill(1) ("smart" shutdown would wait for clients: SIGINT is fast).
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
