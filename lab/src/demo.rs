//! `vitrine-lab demo`: the agent's main job on an embedded default: real pedestrian video and a
//! real-speech microphone recording through the real models, windows printed as they close,
//! published to a local Mosquitto the demo starts when no broker is given.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use vitrine_config::{Config, Mqtt};
use vitrine_signals::Windower;

use vitrine::clock::now_ms;
use vitrine::daemon::run as run_config;

/// The demo's configuration (also a documented example and a test fixture). Its media paths
/// are relative: they resolve inside the media directory.
pub const DEMO_CONFIG: &str = include_str!("../../firmware-config/examples/demo.toml");

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Where scripts/fetch-media.sh put vtest.avi and demo-mic.wav.
    #[arg(long, env = "VITRINE_MEDIA_DIR", default_value = ".cache/media")]
    pub media: PathBuf,
    /// Model directory (fetched into if missing).
    #[arg(long, env = "VITRINE_MODELS_DIR", default_value = ".cache/models")]
    pub models: PathBuf,
    /// Publish to this broker (mqtt://host:port) instead of starting a local Mosquitto.
    #[arg(long)]
    pub broker: Option<String>,
    /// Play the media at its native pace (about 80 s) instead of as fast as possible.
    #[arg(long)]
    pub realtime: bool,
}

pub struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start a throwaway Mosquitto on a free loopback port.
pub fn start_mosquitto(dir: &Path) -> anyhow::Result<Option<(Broker, u16)>> {
    start_mosquitto_with(dir, "")
}

impl Broker {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// [`start_mosquitto`] with extra lines of configuration.
pub fn start_mosquitto_with(dir: &Path, extra: &str) -> anyhow::Result<Option<(Broker, u16)>> {
    if Command::new("mosquitto")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        return Ok(None);
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra}"),
    )?;
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start mosquitto")?;
    let broker = Broker(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "mosquitto did not start listening on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(Some((broker, port)))
}

/// Counts what the broker actually delivers to a subscriber (proof of the round trip).
fn subscribe(
    host: &str,
    port: u16,
    filter: String,
    rt: &tokio::runtime::Runtime,
) -> Arc<AtomicU64> {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let opts = MqttOptions::new(
        format!("vitrine-demo-watch-{}", std::process::id()),
        host,
        port,
    );
    let _g = rt.enter();
    let (client, mut ev) = AsyncClient::new(opts, 16);
    rt.spawn(async move {
        let _ = client.subscribe(filter, QoS::AtLeastOnce).await;
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::Publish(p)))
                    if p.topic.windows(8).any(|w| w == b"/window/") =>
                {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                Ok(other) => tracing::debug!(?other, "demo watcher"),
                Err(e) => {
                    tracing::debug!(error = %e, "demo watcher: broker not reachable");
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
            }
        }
    });
    count
}

pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    for f in ["vtest.avi", "demo-mic.wav"] {
        anyhow::ensure!(
            args.media.join(f).is_file(),
            "demo media {} is missing; fix: run scripts/fetch-media.sh {}",
            args.media.join(f).display(),
            args.media.display()
        );
    }
    vitrine::cmd::models::fetch(&args.models, false)?;
    let media = args.media.canonicalize()?;
    let mut cfg =
        Config::parse(DEMO_CONFIG, &media.join("demo.toml")).map_err(|e| anyhow::anyhow!("{e}"))?;
    cfg.models.dir = args.models.canonicalize()?;
    let state = tempfile_dir()?;
    cfg.outbox.dir = state.clone();
    // The watcher runs on its own worker thread while the pipeline runs.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut _broker = None;
    let (host, port) = match &args.broker {
        Some(url) => {
            let probe = format!("[device]\nid=\"x\"\nstore_id=\"y\"\n[[microphones]]\nid=\"m\"\ndevice=\"d\"\n[mqtt]\nurl=\"{url}\"\n");
            let m = Config::parse(&probe, Path::new("--broker"))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .mqtt
                .context("no broker")?;
            (m.host, m.port)
        }
        None => match start_mosquitto(&state)? {
            Some((b, port)) => {
                _broker = Some(b);
                ("127.0.0.1".to_string(), port)
            }
            None => {
                eprintln!(
                    "mosquitto is not installed: events go to the local outbox {}",
                    state.display()
                );
                (String::new(), 0)
            }
        },
    };
    let received = if port != 0 {
        let m = Mqtt {
            host: host.clone(),
            port,
            client_id: format!("vitrine-{}", cfg.device.id),
            topic_prefix: "vitrine".into(),
            qos: 1,
            keep_alive_secs: 30,
            health_secs: 30,
            tls: None,
        };
        let filter = format!("{}/#", m.topic_prefix);
        cfg.mqtt = Some(m);
        eprintln!(
            "publishing to mqtt://{host}:{port} (watch: mosquitto_sub -p {port} -t 'vitrine/#' -v)"
        );
        Some(subscribe(&host, port, filter, &rt))
    } else {
        None
    };
    eprintln!(
        "demo: vtest.avi (PETS2009 pedestrians) and demo-mic.wav through {} + {}, {} s windows, k_min {}",
        cfg.models.detector,
        cfg.models.vad,
        cfg.privacy.window_secs,
        cfg.privacy.k_min
    );
    let base = Windower::new(cfg.privacy.window_secs).bounds_of(now_ms()).0;
    let code = run_config(&cfg, args.realtime, true, Some(base), None)?;
    if let Some(r) = received {
        std::thread::sleep(Duration::from_millis(300));
        eprintln!(
            "the broker delivered {} window event(s) to a subscriber",
            r.load(Ordering::Relaxed)
        );
    }
    drop(rt);
    let _ = std::fs::remove_dir_all(&state);
    Ok(code)
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("vitrine-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
