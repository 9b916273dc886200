//! `switchboard pin`: discovers the configured backends, shows how what they serve differs from
//! the pinned manifest (new, changed with a diff, gone; scanner findings), and after approval
//! writes the manifest a running gateway enforces (SIGHUP or `POST /admin/reload` applies it).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::diff;
use super::hash::DefKind;
use super::manifest::{Manifest, Pin};
use super::scan::Scanner;
use crate::catalog::{Catalog, spawn_discovery};
use crate::config::Config;
use crate::upstream::UpstreamPool;

/// What `pin` was asked.
#[derive(Debug)]
pub struct PinArgs {
    pub config: Option<PathBuf>,
    /// Only this backend (repeatable); all when empty.
    pub backends: Vec<String>,
    /// Write without asking.
    pub yes: bool,
    /// The manifest to write instead of the config's.
    pub manifest: Option<PathBuf>,
}

/// One definition's difference from the manifest.
#[derive(Debug)]
enum Delta {
    Added(Pin),
    Changed { old: Pin, new: Pin },
    Removed,
}

/// Runs the command; the text goes to `out` (stdout in the binary).
pub async fn run(args: PinArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(p) => Config::load(p)?,
        None => crate::config::embedded_default()?,
    };
    let path = args
        .manifest
        .clone()
        .or_else(|| config.integrity.manifest.clone())
        .context("the embedded config is not a file: pass --config FILE or --manifest FILE")?;
    for b in &args.backends {
        if config.backend(b).is_none() {
            bail!("no backend named {b:?} in the config");
        }
    }
    let chosen: Vec<_> = config
        .backends
        .iter()
        .filter(|b| args.backends.is_empty() || args.backends.contains(&b.name))
        .cloned()
        .collect();
    let mut manifest = Manifest::load(&path)?;
    let scanner = Scanner::new(&config.integrity.scan).map_err(anyhow::Error::msg)?;

    let snapshots = discover(&chosen).await?;
    let mut deltas: Vec<(String, DefKind, String, Delta)> = Vec::new();
    let mut failed = Vec::new();
    for (cfg, snap) in chosen.iter().zip(&snapshots) {
        let Some(snap) = snap else {
            failed.push(cfg.name.clone());
            continue;
        };
        for kind in DefKind::ALL {
            let list = match kind {
                DefKind::Tool => &snap.tools,
                DefKind::Prompt => &snap.prompts,
                DefKind::ResourceTemplate => &snap.templates,
            };
            let mut present = Vec::new();
            for def in list {
                let Some(name) = def.get(kind.key()).and_then(Value::as_str) else {
                    continue;
                };
                present.push(name.to_string());
                let mut new = Pin::of(kind, def);
                new.accepted_findings = scanner
                    .scan(kind, def)
                    .iter()
                    .map(|f| f.rule.to_string())
                    .collect();
                new.accepted_findings.sort();
                new.accepted_findings.dedup();
                match manifest.pin(&cfg.name, kind, name) {
                    None => deltas.push((cfg.name.clone(), kind, name.into(), Delta::Added(new))),
                    Some(old)
                        if old.hash != new.hash
                            || old.accepted_findings != new.accepted_findings =>
                    {
                        deltas.push((
                            cfg.name.clone(),
                            kind,
                            name.into(),
                            Delta::Changed {
                                old: old.clone(),
                                new,
                            },
                        ))
                    }
                    Some(_) => {}
                }
            }
            if let Some(pins) = manifest.backend(&cfg.name) {
                for name in pins.of_kind(kind).keys() {
                    if !present.contains(name) {
                        deltas.push((cfg.name.clone(), kind, name.clone(), Delta::Removed));
                    }
                }
            }
        }
    }
    for f in &failed {
        writeln!(
            out,
            "! {f}: discovery failed; its pins are left as they are"
        )?;
    }
    if deltas.is_empty() {
        writeln!(out, "The manifest {} is up to date.", path.display())?;
        return if failed.is_empty() {
            Ok(())
        } else {
            bail!("discovery failed for: {}", failed.join(", "))
        };
    }
    for (backend, kind, name, d) in &deltas {
        match d {
            Delta::Added(p) => {
                writeln!(out, "+ {backend} {} {name} ({})", kind.as_str(), p.hash)?;
                findings(out, p)?;
            }
            Delta::Changed { old, new } => {
                writeln!(
                    out,
                    "~ {backend} {} {name} ({} → {})",
                    kind.as_str(),
                    old.hash,
                    new.hash
                )?;
                write!(
                    out,
                    "{}",
                    diff::render(&diff::diff(&old.definition, &new.definition))
                )?;
                findings(out, new)?;
            }
            Delta::Removed => writeln!(
                out,
                "- {backend} {} {name} (no longer served)",
                kind.as_str()
            )?,
        }
    }
    let n = deltas.len();
    if !args.yes && !confirm(out, &format!("Write {n} change(s) to {}?", path.display()))? {
        bail!("not written (nothing approved)");
    }
    for (backend, kind, name, d) in deltas {
        match d {
            Delta::Added(p) | Delta::Changed { new: p, .. } => {
                manifest.set(&backend, kind, &name, p)
            }
            Delta::Removed => manifest.unset(&backend, kind, &name),
        }
    }
    manifest.save(&path)?;
    writeln!(
        out,
        "Wrote {n} change(s) to {}. A running gateway applies it on SIGHUP or POST /admin/reload.",
        path.display()
    )?;
    if failed.is_empty() {
        Ok(())
    } else {
        bail!("discovery failed for: {}", failed.join(", "))
    }
}

fn findings(out: &mut dyn Write, p: &Pin) -> std::io::Result<()> {
    if !p.accepted_findings.is_empty() {
        writeln!(
            out,
            "  ! scanner findings accepted by pinning it: {}",
            p.accepted_findings.join(", ")
        )?;
    }
    Ok(())
}

/// Asks on the terminal; without one, the answer is no (use `--yes` in scripts).
fn confirm(out: &mut dyn Write, question: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        writeln!(out, "{question} (no terminal to ask: pass --yes to write)")?;
        return Ok(false);
    }
    write!(out, "{question} [y/N] ")?;
    out.flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Each backend's lists, through the gateway's own discovery (`None`: it failed).
async fn discover(
    backends: &[crate::config::BackendConfig],
) -> anyhow::Result<Vec<Option<std::sync::Arc<crate::catalog::Snapshot>>>> {
    let pool = UpstreamPool::new(backends).context("building the upstream connection pool")?;
    let catalog = Catalog::new(backends.to_vec());
    let stop = CancellationToken::new();
    spawn_discovery(catalog.clone(), pool, stop.clone());
    let wait = backends
        .iter()
        .map(|b| b.timeouts.connect + b.timeouts.request * 4)
        .max()
        .unwrap_or(Duration::from_secs(10));
    let mut ready = catalog.ready_watch();
    let _ = tokio::time::timeout(wait, ready.wait_for(|r| *r)).await;
    let snaps = (0..backends.len()).map(|i| catalog.snapshot(i)).collect();
    // The discovery tasks end and close their connections (stdio children are killed).
    stop.cancel();
    Ok(snaps)
}
