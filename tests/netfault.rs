//! Network faults between the agent and a broker in its own network namespace (a test host of
//! ours on a veth pair): a 2-minute partition (iptables DROP) and 30 % random packet loss.
//! The subscriber runs inside the broker's namespace, so only the agent's link is faulty.
//! Needs root (ip netns, iptables); CI runs as root.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn root() -> bool {
    String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
        .unwrap()
        .trim()
        == "0"
}

fn sh(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A network namespace with a broker at 10.203.N.2, reachable from the host at 10.203.N.1.
struct BrokerHost {
    ns: String,
    ip: String,
    broker: Child,
    sub: Option<Child>,
    rules: Vec<String>,
    _dir: tempfile::TempDir,
}

/// Whether the process that a `vitrine-test-N-PID` name belongs to is gone.
fn stale(name: &str) -> bool {
    name.rsplit('-')
        .next()
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
}

/// Remove what an earlier run that was killed before its cleanup left behind: its iptables rules
/// (a DROP rule left over from a killed partition test cuts the next run off from its broker) and
/// its network namespaces.
fn sweep_stale_leftovers() {
    let rules = Command::new("iptables")
        .arg("-S")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    for rule in String::from_utf8_lossy(&rules).lines() {
        let owner = rule
            .split_once("--comment ")
            .map(|(_, c)| c.split_whitespace().next().unwrap_or(""));
        if let (Some(spec), Some(owner)) = (rule.strip_prefix("-A "), owner) {
            if owner.starts_with("vitrine-test-") && stale(owner) {
                sh(&format!("iptables -D {spec}"));
            }
        }
    }
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    for ns in String::from_utf8_lossy(&list)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
    {
        if ns.starts_with("vitrine-test-") && stale(ns) {
            sh(&format!("ip netns del {ns}"));
        }
    }
}

/// Namespace set-up and tear-down, one at a time (the tests run in parallel).
static NETNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl BrokerHost {
    fn start(n: u8) -> BrokerHost {
        let _one_at_a_time = NETNS.lock().unwrap_or_else(|e| e.into_inner());
        sweep_stale_leftovers();
        let ns = format!("vitrine-test-{n}-{}", std::process::id());
        let (h, b) = (format!("vth{n}"), format!("vtb{n}"));
        let ip = format!("10.203.{n}.2");
        sh(&format!(
            "ip netns del {ns} 2>/dev/null; ip link del {h} 2>/dev/null"
        ));
        assert!(sh(&format!(
            "ip netns add {ns} && ip link add {h} type veth peer name {b} && ip link set {b} netns {ns} && \
             ip addr add 10.203.{n}.1/30 dev {h} && ip link set {h} up && \
             ip netns exec {ns} ip addr add {ip}/30 dev {b} && ip netns exec {ns} ip link set {b} up && ip netns exec {ns} ip link set lo up"
        )));
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("m.conf");
        std::fs::write(
            &conf,
            "listener 1883 0.0.0.0\nallow_anonymous true\npersistence false\n",
        )
        .unwrap();
        let broker = Command::new("ip")
            .args(["netns", "exec", &ns, "mosquitto", "-c"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = std::net::SocketAddr::from(([10, 203, n, 2], 1883));
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            assert!(Instant::now() < deadline, "broker in {ns} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut host = BrokerHost {
            ns,
            ip,
            broker,
            sub: None,
            rules: Vec::new(),
            _dir: dir,
        };
        host.sub = Some(
            Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &host.ns,
                    "mosquitto_sub",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    "1883",
                    "-q",
                    "1",
                    "-c", // a persistent session
                    "-i",
                    "vitrine-netfault-sub",
                    "-t",
                    "vitrine/+/+/window/#",
                    "-v",
                ])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        std::thread::sleep(Duration::from_millis(500));
        host
    }

    /// Add an iptables rule on the host for traffic to and from the broker (removed on drop).
    fn rule(&mut self, spec: &str) {
        for dir in [
            format!("OUTPUT -d {}", self.ip),
            format!("INPUT -s {}", self.ip),
        ] {
            let r = format!("{dir} {spec} -m comment --comment {}", self.ns);
            assert!(sh(&format!("iptables -I {r}")), "iptables -I {r}");
            self.rules.push(r);
        }
    }

    fn clear_rules(&mut self) {
        for r in self.rules.drain(..) {
            sh(&format!("iptables -D {r}"));
        }
    }

    /// Window event seqs the subscriber received.
    fn received(&mut self) -> BTreeSet<u64> {
        let mut sub = self.sub.take().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let _ = sub.kill();
        let out = String::from_utf8(sub.wait_with_output().unwrap().stdout).unwrap();
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(_, j)| {
                serde_json::from_str::<serde_json::Value>(j).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }
}

impl Drop for BrokerHost {
    fn drop(&mut self) {
        self.clear_rules();
        if let Some(s) = &mut self.sub {
            let _ = s.kill();
        }
        let _ = self.broker.kill();
        let _ = self.broker.wait();
        let _one_at_a_time = NETNS.lock().unwrap_or_else(|e| e.into_inner());
        sh(&format!("ip netns del {}", self.ns));
    }
}

fn agent(dir: &std::path::Path, ip: &str) -> Child {
    // 240 s of audio (demo-mic.wav three times): the agent must outlive the fault.
    let long = dir.join("long-mic.wav");
    let m = media("demo-mic.wav");
    assert!(Command::new("sox")
        .args([&m, &m, &m])
        .arg(&long)
        .status()
        .unwrap()
        .success());
    let cfg = write_config(
        dir,
        &format!("[[microphones]]\nid = \"floor\"\nfile = \"{}\"\n[mqtt]\nurl = \"mqtt://{ip}:1883\"\nkeep_alive_secs = 5\n[privacy]\nwindow_secs = 5\n", long.display()),
    );
    vitrine()
        .args(["run", "--realtime", "--config"])
        .arg(&cfg)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Resident memory of a process, kB (Linux).
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn stop(child: Child) -> String {
    let out = sigterm_and_wait(child);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{log}");
    log
}

#[test]
fn a_two_minute_partition_loses_nothing() {
    if !root() {
        eprintln!("SKIPPED a_two_minute_partition_loses_nothing: needs root (ip netns, iptables)");
        return;
    }
    let mut host = BrokerHost::start(1);
    let dir = tempfile::tempdir().unwrap();
    // Windows closed during the partition pile up in the outbox.
    let child = agent(dir.path(), &host.ip.clone());
    std::thread::sleep(Duration::from_secs(8));
    let rss_before = rss_kb(child.id());
    host.rule("-j DROP");
    std::thread::sleep(Duration::from_secs(120));
    let rss_during = rss_kb(child.id());
    host.clear_rules();
    // Events wait on disk, not in memory: the agent's memory barely moves over a 2-minute outage.
    eprintln!(
        "agent RSS: {rss_before} kB before the partition, {rss_during} kB after 2 minutes of it"
    );
    assert!(
        rss_during < rss_before + 16 * 1024,
        "memory grew from {rss_before} to {rss_during} kB"
    );
    // Backoff is at most 30 s (+20 %): the agent is back within 40 s.
    let deadline = Instant::now() + Duration::from_secs(45);
    while !outbox_events(&dir.path().join("state")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
    }
    let log = stop(child);
    assert!(log.contains("MQTT connection lost"), "{log}");
    let seqs = host.received();
    // At least the 8 s before and the 120 s of the partition, in 5 s windows.
    assert_all_delivered(&seqs, 25, dir.path());
}

#[test]
fn thirty_percent_packet_loss_loses_nothing() {
    if !root() {
        eprintln!(
            "SKIPPED thirty_percent_packet_loss_loses_nothing: needs root (ip netns, iptables)"
        );
        return;
    }
    let mut host = BrokerHost::start(2);
    let dir = tempfile::tempdir().unwrap();
    let child = agent(dir.path(), &host.ip.clone());
    std::thread::sleep(Duration::from_secs(3));
    host.rule("-m statistic --mode random --probability 0.3 -j DROP");
    std::thread::sleep(Duration::from_secs(40));
    host.clear_rules();
    let deadline = Instant::now() + Duration::from_secs(45);
    while !outbox_events(&dir.path().join("state")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
    }
    stop(child);
    let seqs = host.received();
    // At least the 3 s before and the 40 s of loss, in 5 s windows.
    assert_all_delivered(&seqs, 6, dir.path());
}
