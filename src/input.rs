//! Bad input: flags that cannot be used, an output directory that cannot be written, a server
//! binary or ports that are not there. The binary exits 254 for these (as Jepsen's CLI does for
//! bad arguments), never 255, which is slotcheck's own failure.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::harness::HarnessError;

/// Why the command line, or the environment it names, cannot be used; found before any work.
#[derive(Debug, thiserror::Error)]
pub enum BadInput {
    /// A flag's value that cannot be used, or flags that cannot go together.
    #[error("{0}")]
    Flag(String),
    /// The `--output` directory cannot be used.
    #[error("--output {}: {why}", path.display())]
    Output {
        /// The directory given.
        path: PathBuf,
        /// Why it cannot be used.
        why: String,
    },
}

impl BadInput {
    /// A flag that cannot be used, with a sentence saying why.
    pub fn flag(why: impl Into<String>) -> BadInput {
        BadInput::Flag(why.into())
    }

    /// An unusable output directory.
    pub fn output(path: &Path, why: impl Into<String>) -> BadInput {
        BadInput::Output {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

/// Whether `err` (anywhere in its chain) is bad input: a [`BadInput`], a refused [`ConfigError`],
/// or a harness error that the command line or the machine causes (no server binary, not a
/// server, a cluster shape beyond the limits, no free ports).
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<BadInput>()
            || e.downcast_ref::<HarnessError>().is_some_and(is_bad_harness)
            || match e.downcast_ref::<ConfigError>() {
                Some(ConfigError::Harness(h)) => is_bad_harness(h),
                Some(ConfigError::Flag(_)) => true,
                None => false,
            }
    })
}

/// Whether a harness error is the command line's or the machine's doing, not slotcheck's.
fn is_bad_harness(err: &HarnessError) -> bool {
    matches!(
        err,
        HarnessError::ServerNotFound { .. }
            | HarnessError::Version { .. }
            | HarnessError::UnknownKind(_)
            | HarnessError::InvalidSpec(_)
            | HarnessError::NoFreePorts { .. }
    )
}

/// Files a run writes first: a directory holding one of them is a run directory.
const RUN_FILES: &[&str] = &["history.jsonl", "results.json", "run.log", "segments"];

/// Whether `dir` holds a run of slotcheck's (its history, results, log or soak segments).
pub fn is_run_dir(dir: &Path) -> bool {
    RUN_FILES.iter().any(|f| dir.join(f).exists())
}

/// Checks that `dir` can be a new run's directory, and creates it: an existing run directory is
/// refused unless `force` (then it is emptied first), a file or an unwritable directory is
/// refused naming the path. Nothing is created when the answer is no.
pub fn prepare_output(dir: &Path, force: bool) -> Result<(), BadInput> {
    if dir.exists() {
        if !dir.is_dir() {
            return Err(BadInput::output(dir, "exists and is not a directory"));
        }
        if is_run_dir(dir) {
            if !force {
                return Err(BadInput::output(
                    dir,
                    "holds an earlier run (history.jsonl, results.json or run.log); choose another \
                     directory or give --force to replace it",
                ));
            }
            std::fs::remove_dir_all(dir).map_err(|e| {
                BadInput::output(dir, format!("cannot remove the earlier run: {e}"))
            })?;
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| BadInput::output(dir, format!("cannot create the directory: {e}")))?;
    writable(dir)
}

/// Continues in an existing run directory (`soak --resume`): it must be a writable directory.
pub fn reuse_output(dir: &Path) -> Result<(), BadInput> {
    if !dir.is_dir() {
        return Err(BadInput::output(dir, "is not a directory"));
    }
    writable(dir)
}

/// Whether a file can be created in `dir` (permissions, a read-only or immutable directory).
fn writable(dir: &Path) -> Result<(), BadInput> {
    let probe = dir.join(".slotcheck-write-probe");
    std::fs::write(&probe, b"")
        .map_err(|e| BadInput::output(dir, format!("cannot write in the directory: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::ServerKind;

    #[test]
    fn bad_input_is_found_anywhere_in_the_chain() {
        let cases: Vec<(anyhow::Error, bool)> = vec![
            (BadInput::flag("--masters must be at least 1").into(), true),
            (
                anyhow::Error::from(HarnessError::NoFreePorts {
                    count: 3,
                    attempts: 10_000,
                })
                .context("starting the cluster"),
                true,
            ),
            (
                HarnessError::ServerNotFound {
                    kind: ServerKind::Redis,
                    hint: "install it".into(),
                }
                .into(),
                true,
            ),
            (HarnessError::InvalidSpec("1000 nodes".into()).into(), true),
            (
                HarnessError::Timeout {
                    addr: "cluster".into(),
                    waiting_for: "cluster_state:ok".into(),
                    elapsed_ms: 20_000,
                    last_state: "fail".into(),
                }
                .into(),
                false,
            ),
            (anyhow::anyhow!("something of ours broke"), false),
        ];
        for (err, bad) in cases {
            assert_eq!(is_bad_input(&err), bad, "{err:#}");
        }
    }

    #[test]
    fn an_earlier_run_needs_force_and_a_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        prepare_output(&run, false).unwrap();
        std::fs::write(run.join("results.json"), "{}").unwrap();
        let err = prepare_output(&run, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(
            run.join("results.json").exists(),
            "refusing touches nothing"
        );
        prepare_output(&run, true).unwrap();
        assert!(run.is_dir() && !run.join("results.json").exists());
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let err = prepare_output(&file, true).unwrap_err();
        assert!(err
            .to_string()
            .starts_with(&format!("--output {}", file.display())));
    }
}
