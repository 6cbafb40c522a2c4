//! Shared harness for the integration tests: where the real media and models are, the
//! `vitrine` and `vitrine-lab` binaries, a real Mosquitto on a free port, and the published JSON Schema.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

pub mod scan;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Real media from Debian's registries (scripts/fetch-media.sh; the test script runs it).
pub fn media(name: &str) -> PathBuf {
    let dir = std::env::var_os("VITRINE_MEDIA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/media"));
    let p = dir.join(name);
    assert!(
        p.is_file(),
        "test media {} is missing: run scripts/fetch-media.sh first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Pinned models (`vitrine models fetch --dir .cache/models`; the test script runs it).
/// Evaluation media that only a development checkout has (`../shared/media`, or
/// `VITRINE_EVAL_MEDIA`): faces for attention have no Debian/PyPI source. `None` elsewhere.
#[allow(dead_code)]
pub fn eval_media(rel: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VITRINE_EVAL_MEDIA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/media"));
    let p = dir.join(rel);
    p.is_file().then_some(p)
}

pub fn models() -> PathBuf {
    let dir = std::env::var_os("VITRINE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".cache/models"));
    assert!(
        dir.join("yolox_nano.onnx").is_file(),
        "models missing in {}: run `vitrine models fetch --dir {}` (scripts/test.sh does)",
        dir.display(),
        dir.display()
    );
    dir
}

/// A binary of the workspace: the test's own package's (Cargo names it), else the one beside
/// the test's directory (same profile: `cargo test --workspace` builds every package's binaries).
fn workspace_bin(own: Option<&'static str>, name: &str) -> PathBuf {
    if let Some(p) = own {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().and_then(Path::parent).unwrap().join(name);
    assert!(
        p.is_file(),
        "{} is missing; fix: cargo build -p {name}",
        p.display()
    );
    p
}

/// The agent (`vitrine`).
pub fn vitrine() -> Command {
    let mut c = Command::new(workspace_bin(
        option_env!("CARGO_BIN_EXE_vitrine"),
        "vitrine",
    ));
    c.env("VITRINE_LOG", "info");
    c
}

/// The laboratory (`vitrine-lab`: demo, bench, eval).
pub fn lab() -> Command {
    let bin = workspace_bin(option_env!("CARGO_BIN_EXE_vitrine-lab"), "vitrine-lab");
    let mut c = Command::new(bin);
    c.env("VITRINE_LOG", "info");
    c
}

/// A command's standard output, once it is known to have succeeded (else both outputs shown).
pub fn succeeded(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// `vitrine run --config cfg` to the end of its recordings; panics with its log on failure.
pub fn run_to_end(cfg: &Path) -> std::process::Output {
    ok(vitrine().args(["run", "--config"]).arg(cfg))
}

/// `vitrine run --realtime --config cfg` started, its log piped (read it after the end).
pub fn spawn_realtime(cfg: &Path) -> Child {
    vitrine()
        .args(["run", "--realtime", "--config"])
        .arg(cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A config with one microphone (id `floor`) playing `file` of the media to the broker on
/// `port`, with `mqtt` added to its `[mqtt]` section (`"keep_alive_secs = 5\n"`), 5 s windows.
pub fn mic_to_broker(dir: &Path, file: &str, port: u16, mqtt: &str) -> PathBuf {
    write_config(
        dir,
        &format!(
            "[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n{mqtt}[privacy]\nwindow_secs = 5\n",
            media(file).display()
        ),
    )
}

/// Runs a command to its end; panics with both outputs if it failed.
pub fn ok(c: &mut Command) -> std::process::Output {
    let out = c.output().unwrap();
    succeeded(&out);
    out
}

pub fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("signals/schema/window-event.v1.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("the schema itself is valid")
}

/// Another published schema of `signals/schema/` (status, health, alert, forecast, gap).
pub fn schema_named(name: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("signals/schema").join(name)).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).expect("valid schema")
}

pub fn assert_valid(v: &jsonschema::Validator, ev: &serde_json::Value) {
    let errors: Vec<String> = v
        .iter_errors(ev)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "payload does not match the schema: {errors:?}\n{ev}"
    );
}

pub fn read_jsonl(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The events an agent's outbox holds, unacknowledged, in order. Read-only: safe while the
/// agent runs (the watermark is persisted lazily: a running agent may still list events
/// acknowledged in the last seconds).
pub fn outbox_events(dir: &Path) -> Vec<serde_json::Value> {
    vitrine::outbox::inspect(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| serde_json::from_slice(&p).unwrap())
        .collect()
}

/// A config for the given sources, with absolute paths, written into `dir`.
pub fn write_config(dir: &Path, body: &str) -> PathBuf {
    let text = format!(
        "[device]\nid = \"test-box\"\nstore_id = \"test-store\"\n\n{body}\n\n[models]\ndir = \"{}\"\n\n[outbox]\ndir = \"{}\"\n",
        models().display(),
        dir.join("state").display()
    );
    let p = dir.join("agent.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The demo's camera geometry for vtest.avi.
pub fn walkway_camera(fps: u32) -> String {
    format!(
        "[[cameras]]\nid = \"walkway\"\nfile = \"{}\"\nfps = {fps}\n\n[[cameras.lines]]\nid = \"walkway-x045\"\nfrom = [0.45, 0.28]\nto = [0.45, 0.72]\nin = \"left\"\n\n[[cameras.zones]]\nid = \"pavement-west\"\npolygon = [[0.0, 0.31], [0.42, 0.31], [0.42, 0.50], [0.0, 0.45]]\n\n[[cameras.displays]]\nid = \"info-sign\"\npolygon = [[0.48, 0.34], [0.64, 0.34], [0.64, 0.52], [0.48, 0.52]]\n",
        media("vtest.avi").display()
    )
}

/// Stop an agent as systemd would (SIGTERM) and wait for it; its exit status and output.
pub fn sigterm_and_wait(child: Child) -> std::process::Output {
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill -TERM {}", child.id());
    child.wait_with_output().unwrap()
}

/// Asserts that `seqs` is exactly 1..=max (every seq delivered at least once, none skipped)
/// and that at least `min_max` events were produced; returns max.
pub fn assert_contiguous(seqs: &std::collections::BTreeSet<u64>, min_max: u64, what: &str) -> u64 {
    let max = *seqs.iter().next_back().expect("events arrived");
    assert!(max >= min_max, "{seqs:?}");
    assert_eq!(*seqs, (1..=max).collect(), "{what}");
    max
}

/// Nothing lost and nothing left behind: the window seqs received are 1..=n without a gap
/// (n at least `min_max`), and the outbox under `dir/state` is empty (every event acknowledged).
pub fn assert_all_delivered(seqs: &std::collections::BTreeSet<u64>, min_max: u64, dir: &Path) {
    assert_contiguous(
        seqs,
        min_max,
        "every seq delivered at least once, none skipped",
    );
    assert!(
        outbox_events(&dir.join("state")).is_empty(),
        "events left in the outbox: not everything was acknowledged"
    );
}

/// A loopback port nobody listens on (bound, read, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Mosquitto on a free loopback port, killed on drop.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Self::spawn(&conf, port);
        Mosquitto { child, port, dir }
    }

    /// SIGKILL: no goodbye to anyone, in-memory state gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGSTOP / SIGCONT: a hung broker (accepts TCP in the kernel, answers nothing).
    pub fn pause(&self, on: bool) {
        let sig = if on { "-STOP" } else { "-CONT" };
        assert!(Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
    }

    /// Start again on the same port with extra configuration lines (e.g. an ACL).
    pub fn restart_with(&mut self, extra: &str) {
        let conf = self.dir.path().join("mosquitto.conf");
        let base = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n",
            self.port
        );
        std::fs::write(&conf, base + extra).unwrap();
        self.kill9();
        self.child = Self::spawn(&conf, self.port);
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Start again on the same port.
    pub fn restart(&mut self) {
        self.child = Self::spawn(&self.dir.path().join("mosquitto.conf"), self.port);
    }

    fn spawn(conf: &Path, port: u16) -> Child {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is not installed: scripts/test.sh installs it (apt-get install mosquitto)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A subscriber with a persistent session, on its own thread and runtime, collecting
/// (topic, payload, retained).
pub struct Subscriber {
    pub rx: std::sync::mpsc::Receiver<(String, Vec<u8>, bool)>,
    _thread: std::thread::JoinHandle<()>,
}

impl Subscriber {
    pub fn start(port: u16, filter: &str) -> Subscriber {
        use rumqttc::v5::mqttbytes::v5::Packet;
        use rumqttc::v5::mqttbytes::QoS;
        use rumqttc::v5::{AsyncClient, Event, MqttOptions};
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let filter = filter.to_string();
        let id = format!(
            "test-sub-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                // A persistent session: what the broker queues while this subscriber is away is kept.
                let mut opts = MqttOptions::new(id, "127.0.0.1", port);
                opts.set_clean_start(false);
                opts.set_session_expiry_interval(Some(3600));
                // Payloads up to 1 MiB, as the agent reads them (a round of the chain prior
                // is over the client's default of 10 KiB).
                opts.set_max_packet_size(Some(1 << 20));
                let (client, mut ev) = AsyncClient::new(opts, 64);
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    match ev.poll().await {
                        // (Re)subscribe on every connection: a clean session forgets it.
                        Ok(Event::Incoming(Packet::ConnAck(_))) => client
                            .try_subscribe(filter.clone(), QoS::AtLeastOnce)
                            .unwrap(),
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = ready_tx.send(());
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            if tx
                                .send((
                                    String::from_utf8_lossy(&p.topic).to_string(),
                                    p.payload.to_vec(),
                                    p.retain,
                                ))
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            if Instant::now() > deadline {
                                eprintln!("test subscriber gives up: {e}");
                                return;
                            }
                            eprintln!("test subscriber: {e}; retrying");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("subscribed");
        Subscriber {
            rx,
            _thread: thread,
        }
    }

    /// Everything received until `quiet` passes with no new message.
    pub fn drain(&self, quiet: Duration) -> Vec<(String, Vec<u8>, bool)> {
        let mut out = Vec::new();
        while let Ok(m) = self.rx.recv_timeout(quiet) {
            out.push(m);
        }
        out
    }
}

/// GET `path` from a loopback HTTP server (the metrics endpoint); None if it does not answer.
pub fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of the first sample line starting with `prefix`.
pub fn sample(text: &str, prefix: &str) -> f64 {
    try_sample(text, prefix).unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"))
}

pub fn try_sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
