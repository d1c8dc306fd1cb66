//! How long `slotcheck verify` takes on a large data set: 3 masters with 1 replica each, 1M keys of
//! 100 bytes spread over all slots (or `KEYS`/`VALUE_BYTES` from the environment), for Redis 7.0
//! and Valkey 9.1 (`SERVERS`). Prints the load time, then count-based verify, `--deep` verify and,
//! as a baseline, `redis-cli --cluster check` on the same cluster in the same run (which checks the
//! slot configuration only, so never sees a stranded key), with the ratio of verify's time to it.
//!
//! `cargo run --release --example verify_scale`

use std::time::Instant;

use slotcheck::bench::dataset::{load, DatasetSpec, Layout};
use slotcheck::harness::{find_cli, Cluster, ClusterSpec, ServerKind};
use slotcheck::verify::{verify, VerifyOptions};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let keys = env_or("KEYS", 1_000_000);
    let value_bytes = env_or("VALUE_BYTES", 100) as usize;
    let servers = std::env::var("SERVERS").unwrap_or_else(|_| "redis valkey".into());
    println!("server  keys      load_s  verify_s  deep_s  cli_check_s  verify/cli  findings");
    for server in servers.split_whitespace() {
        let kind: ServerKind = server.parse()?;
        let dir = tempfile::tempdir()?;
        let mut spec = ClusterSpec::new(kind, 3, 1, dir.path().join("cluster"));
        spec.die_with_parent = true;
        let cluster = Cluster::start(spec).await?;
        let data = DatasetSpec {
            keys,
            value_bytes,
            layout: Layout::Spread,
            prefix: "v:".into(),
        };
        let loaded = load(&cluster, &data).await?;
        let seeds: Vec<String> = cluster.nodes.iter().map(|n| n.addr.clone()).collect();
        let t = Instant::now();
        let counted = verify(&seeds, None, &VerifyOptions::default()).await?;
        let verify_s = t.elapsed().as_secs_f64();
        let deep = VerifyOptions {
            deep: true,
            ..VerifyOptions::default()
        };
        let t = Instant::now();
        let deep = verify(&seeds, None, &deep).await?;
        let deep_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let cli = std::process::Command::new(find_cli()?)
            .args(["--cluster", "check", &seeds[0]])
            .output()?;
        let cli_s = t.elapsed().as_secs_f64();
        anyhow::ensure!(cli.status.success(), "redis-cli --cluster check failed");
        anyhow::ensure!(
            counted.keys_on_masters == keys,
            "verify counted {} keys on masters, loaded {keys}",
            counted.keys_on_masters
        );
        println!(
            "{server:<7} {keys:<9} {:<7.2} {verify_s:<9.2} {deep_s:<7.2} {cli_s:<12.2} {:<10.2} {} / {} (deep: {} keys compared by value)",
            loaded.duration.as_secs_f64(),
            verify_s / cli_s,
            counted.anomalies.len(),
            deep.anomalies.len(),
            deep.keys_compared_by_value
        );
    }
    Ok(())
}
