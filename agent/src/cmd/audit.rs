//! `vitrine audit --line ID`: the accuracy audit in a terminal. The technician types `i` (in)
//! or `o` (out) and Enter for every person crossing the line while the running agent counts
//! it; after `--minutes` (or `q` / end of input) both tallies, their agreement and the
//! interval are printed, and with `--publish` the result is stored as an event.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::time::{Duration, Instant};

use vitrine_signals::audit::{AgentCount, Audit, AuditResult, Direction};

use crate::clock::now_ms;
use crate::daemon::control::{ask, socket_path, Request};

pub struct AuditArgs {
    pub config: PathBuf,
    pub line: String,
    pub camera: Option<String>,
    pub minutes: f64,
    pub publish: bool,
}

pub fn audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let cfg = match super::load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let camera = match &args.camera {
        Some(c) => c.clone(),
        None => cfg
            .cameras
            .iter()
            .find(|c| c.lines.iter().any(|l| l.id == args.line))
            .map(|c| c.id.clone())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no camera has a line {:?} in {}; fix: name one of its [[cameras.lines]] ids",
                    args.line,
                    cfg.file.display()
                )
            })?,
    };
    let socket = socket_path(&cfg);
    let count = || -> anyhow::Result<AgentCount> {
        let req = Request::Count {
            camera: camera.clone(),
            line: args.line.clone(),
        };
        let (r, _) = ask(&socket, &req).map_err(anyhow::Error::msg)?;
        r.count
            .ok_or_else(|| anyhow::anyhow!("the agent gave no count"))
    };
    let mut audit = Audit::start(&camera, &args.line, now_ms(), count()?);
    println!(
        "Auditing line {:?} of camera {camera:?} for {} min: type i (in) or o (out) and Enter for each person crossing; q ends early.",
        args.line, args.minutes
    );
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs_f64(args.minutes.max(0.0) * 60.0);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => match l.trim() {
                "i" | "in" | "+" => audit.tap(Direction::In),
                "o" | "out" | "-" => audit.tap(Direction::Out),
                "q" | "quit" => break,
                "" => continue,
                other => {
                    eprintln!("{other:?}: type i, o or q");
                    continue;
                }
            },
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => break,
        }
        println!("  you: {} in, {} out", audit.manual.ins, audit.manual.outs);
    }
    audit.stop(now_ms(), count()?);
    let r = audit.result(now_ms());
    print_result(&r);
    if args.publish {
        let (reply, _) = ask(&socket, &Request::PublishAudit { audit })
            .map_err(|e| anyhow::anyhow!("not published: {e}"))?;
        println!("published (event seq {})", reply.seq.unwrap_or(0));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn print_result(r: &AuditResult) {
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.0} %", v * 100.0));
    println!(
        "audit of line {:?} ({}), {:.1} min",
        r.line, r.camera, r.minutes
    );
    println!(
        "  you tapped    {:>5} in {:>5} out {:>6} total",
        r.manual.ins,
        r.manual.outs,
        r.manual.total()
    );
    println!(
        "  agent counted {:>5} in {:>5} out {:>6} total",
        r.agent.ins,
        r.agent.outs,
        r.agent.total()
    );
    println!("  agreement {}", pct(r.agreement));
    if let Some(ratio) = r.ratio {
        println!(
            "  agent/you {} (95 % interval {} to {})",
            pct(Some(ratio)),
            pct(r.ratio_low),
            r.ratio_high
                .map_or("unbounded".to_string(), |h| pct(Some(h)))
        );
    }
    if r.interrupted {
        println!("  the camera restarted during the audit (a configuration change): its count does not cover the audit; run it again");
    }
}
