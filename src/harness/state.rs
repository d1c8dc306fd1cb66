//! A record of a detached cluster (`slotcheck cluster up`), so a later process can use and destroy it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cluster::Node;
use super::error::HarnessError;
use super::process;
use super::server::ServerKind;

/// The largest state file we read; a limit on what we parse.
const STATE_BYTES_MAX: u64 = 1 << 20;

/// A cluster left running by `Cluster::detach`, saved as JSON between slotcheck invocations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Which server runs.
    pub kind: ServerKind,
    /// Server version, e.g. `9.1.2`.
    pub version: String,
    /// The root dir the node dirs live in.
    pub dir: PathBuf,
    /// Every node with its process identity.
    pub nodes: Vec<DetachedNode>,
}

/// A node of a detached cluster plus what we need to recognise its process later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachedNode {
    /// The node as it was at bring-up.
    #[serde(flatten)]
    pub node: Node,
    /// Process start time (clock ticks since boot): with the pid it names one process, so a recycled pid
    /// is never mistaken for our server.
    pub start_ticks: Option<u64>,
}

impl ClusterState {
    /// Writes the state as pretty JSON (to a temporary file first, so a crash leaves no half file).
    pub fn save(&self, path: &Path) -> Result<(), HarnessError> {
        let json = serde_json::to_string_pretty(self).map_err(|source| HarnessError::State {
            path: path.to_path_buf(),
            source,
        })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json + "\n")
            .map_err(|e| HarnessError::io(format!("write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            HarnessError::io(format!("rename {} to {}", tmp.display(), path.display()), e)
        })
    }

    /// Reads a state written by `save`.
    pub fn load(path: &Path) -> Result<ClusterState, HarnessError> {
        let len = std::fs::metadata(path)
            .map_err(|e| HarnessError::io(format!("stat {}", path.display()), e))?
            .len();
        if len > STATE_BYTES_MAX {
            return Err(HarnessError::io(
                format!("read {}", path.display()),
                std::io::Error::other(format!("{len} bytes is more than {STATE_BYTES_MAX}")),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| HarnessError::io(format!("read {}", path.display()), e))?;
        serde_json::from_str(&text).map_err(|source| HarnessError::State {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Addresses of all nodes, for a client's seed list.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.node.addr.clone()).collect()
    }

    /// Stops every server that is still ours and removes the node dirs; a failure to remove is logged.
    pub fn destroy(&self) {
        if let Err(error) = self.try_destroy() {
            tracing::warn!(%error, "cluster destroyed, but its files were not all removed");
        }
    }

    /// Stops every server that is still ours (pid, start time and command line all match) and removes
    /// the node dirs, and the root dir if that leaves it empty.
    pub fn try_destroy(&self) -> Result<(), HarnessError> {
        for detached in &self.nodes {
            if self.is_ours(detached) {
                process::stop_pid(detached.node.pid);
            }
        }
        for detached in &self.nodes {
            let dir = &detached.node.dir;
            let named_like_ours = dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("node-"));
            // A state file could be edited by hand: never remove anything but our own node dirs.
            if !dir.starts_with(&self.dir) || !named_like_ours {
                return Err(HarnessError::InvalidSpec(format!(
                    "refusing to remove {}: not a node-* dir under {}",
                    dir.display(),
                    self.dir.display()
                )));
            }
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(HarnessError::io(format!("remove {}", dir.display()), e)),
            }
        }
        // Fails harmlessly if the caller keeps other files there.
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }

    /// Whether the process at the node's pid is still the server we started.
    fn is_ours(&self, detached: &DetachedNode) -> bool {
        let pid = detached.node.pid;
        if !process::pid_alive(pid) {
            return false;
        }
        if let Some(ticks) = detached.start_ticks {
            if process::start_ticks(pid) != Some(ticks) {
                return false;
            }
        }
        // Servers rewrite their title to `<binary> 127.0.0.1:<port> [cluster]`.
        let Some(cmdline) = process::cmdline(pid) else {
            return false;
        };
        let port_suffix = format!(":{}", detached.node.port);
        cmdline.contains(self.kind.binary_name())
            && cmdline
                .split_whitespace()
                .any(|word| word.ends_with(&port_suffix))
    }
}
