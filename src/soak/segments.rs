//! The segment files of a soak's history: which exist, which are closed, and what each holds
//! (time span, lines, processes, nemesis actions), learned by reading each closed one once.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use checker::{History, Process};
use std::io::Write;

/// The directory of a soak's segments inside its run directory.
pub const SEGMENTS_DIR: &str = "segments";

/// What one closed segment holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    /// Its number (1 for the first).
    pub index: u64,
    /// Its file.
    pub path: PathBuf,
    /// Events in it.
    pub events: u64,
    /// Earliest and latest event time, ns (equal for an empty segment: its successor's start).
    pub min_time: u64,
    /// Latest event time, ns.
    pub max_time: u64,
    /// Highest client process number in it.
    pub max_process: Option<u64>,
    /// `migrate-end` events in it.
    pub migrations: u64,
    /// Node faults begun in it.
    pub faults: u64,
    /// Non-fatal problems reading it (a cut last line).
    pub warnings: Vec<String>,
}

/// Segment numbers present in `dir`, ascending.
pub fn list(dir: &Path) -> Result<Vec<u64>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name
            .strip_suffix(".jsonl")
            .and_then(|n| n.parse::<u64>().ok())
        {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Reads segment `index` of `dir` once and sums it up.
pub fn read(dir: &Path, index: u64) -> Result<(Segment, History)> {
    let path = workloads::segment_path(dir, index);
    let history = History::read_file(&path)?;
    let times = history.events.iter().map(|e| e.time);
    let min_time = times.clone().min().unwrap_or(0);
    let max_time = times.max().unwrap_or(0);
    let mut segment = Segment {
        index,
        path,
        events: history.events.len() as u64,
        min_time,
        max_time,
        max_process: None,
        migrations: 0,
        faults: 0,
        warnings: history.warnings.clone(),
    };
    for e in &history.events {
        match e.process {
            Process::Client(p) => {
                segment.max_process = segment.max_process.max(Some(p));
            }
            Process::Nemesis => {
                let begin = e.value.get("phase").and_then(|p| p.as_str()) == Some("begin");
                if e.f == "migrate-end" {
                    segment.migrations += 1;
                } else if begin && FAULTS.contains(&e.f.as_str()) {
                    segment.faults += 1;
                }
            }
        }
    }
    Ok((segment, history))
}

/// Nemesis verbs that begin a node fault.
const FAULTS: &[&str] = &["kill", "shutdown", "pause", "failover", "partition", "slow"];

/// The index of closed segments in a run directory, one line per segment, so that a resumed
/// soak does not read its whole history again.
pub const INDEX_FILE: &str = "segment-index.jsonl";

/// The segments indexed so far in `run_dir` (none if there is no index yet); a cut last line is
/// dropped (that segment is indexed again).
pub fn load_index(run_dir: &Path) -> Result<Vec<Segment>> {
    let path = run_dir.join(INDEX_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Segment>(l).ok())
        .filter(|s| s.path.is_file())
        .collect())
}

/// Appends `segment` to the index in `run_dir`.
pub fn append_index(run_dir: &Path, segment: &Segment) -> Result<()> {
    let path = run_dir.join(INDEX_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut line = serde_json::to_vec(segment)?;
    line.push(b'\n');
    file.write_all(&line)
        .with_context(|| format!("writing {}", path.display()))
}
