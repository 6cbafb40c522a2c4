//! TLS with a private CA and per-device client certificates (mutual TLS) against a real
//! Mosquitto: delivery works, the broker's hostname is checked, a world-readable key is refused.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success(), "openssl {args:?}");
}

/// A private CA, a server certificate for DNS name `localhost` only, a client certificate.
fn pki(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Vitrine Test CA",
        ],
    );
    for (name, ext) in [
        ("server", "subjectAltName=DNS:localhost"),
        ("client", "extendedKeyUsage=clientAuth"),
    ] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(dir.join(format!("{name}.ext")), format!("{ext}\n")).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Mosquitto started as root drops to its own user: let it reach its (test) files.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["ca.pem", "server.pem", "server.key"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

struct TlsBroker(Child, u16);

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_broker(dir: &Path) -> TlsBroker {
    let port = free_port();
    let d = dir.display();
    let conf = format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n");
    std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto (TLS) did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsBroker(child, port)
}

fn config(dir: &Path, host: &str, port: u16) -> std::path::PathBuf {
    let d = dir.display();
    write_config(
        dir,
        &format!("[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[mqtt]\nurl = \"mqtts://{host}:{port}\"\n[mqtt.tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/client.pem\"\nkey = \"{d}/client.key\"\n[privacy]\nwindow_secs = 5\n", media("noise.wav").display()),
    )
}

/// Subscribe through the TLS listener with mosquitto_sub (the harness subscriber is plain TCP).
fn tls_sub(dir: &Path, port: u16) -> Child {
    let d = dir.display().to_string();
    Command::new("mosquitto_sub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "--cafile",
            &format!("{d}/ca.pem"),
            "--cert",
            &format!("{d}/client.pem"),
            "--key",
            &format!("{d}/client.key"),
            "-t",
            "vitrine/+/+/window/#",
            "-v",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (mosquitto-clients)")
}

#[test]
fn mutual_tls_with_a_private_ca_delivers() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let broker = tls_broker(dir.path());
    let mut sub = tls_sub(dir.path(), broker.1);
    std::thread::sleep(Duration::from_millis(500));
    let cfg = config(dir.path(), "localhost", broker.1);
    let out = vitrine()
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        !log.contains("BEGIN") && !log.contains("PRIVATE"),
        "no key material in logs"
    );
    assert!(
        outbox_events(&dir.path().join("state")).is_empty(),
        "all acknowledged over mTLS: {log}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let _ = sub.kill();
    let text = String::from_utf8(sub.wait_with_output().unwrap().stdout).unwrap();
    let seqs: BTreeSet<u64> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(_, json)| {
            serde_json::from_str::<serde_json::Value>(json).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(seqs.len() >= 3, "{text}");
}

#[test]
fn the_broker_hostname_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let broker = tls_broker(dir.path());
    // The server certificate names `localhost`, not 127.0.0.1: the connection must be refused
    // and the events kept.
    let cfg = config(dir.path(), "127.0.0.1", broker.1);
    let out = vitrine()
        .env("VITRINE_LOG", "debug")
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains("NotValidForName")
            || log.contains("not valid for name")
            || log.contains("CertificateNotValidForName"),
        "{log}"
    );
    assert!(
        !outbox_events(&dir.path().join("state")).is_empty(),
        "nothing delivered to an unverified broker"
    );
}

#[test]
fn a_world_readable_client_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.path().join("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let cfg = config(dir.path(), "localhost", 8883);
    let out = vitrine().arg("check-config").arg(&cfg).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("mqtt.tls.key")
            && err.contains("readable by other users")
            && err.contains("chmod 600"),
        "{err}"
    );
}
