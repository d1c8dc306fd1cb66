//! The Codis router against two real PikiwiDB servers: keys written while a slot migrates
//! (`SLOTSMGRTTAGSLOT` for sync, `SLOTSMGRTTAGSLOT-ASYNC` for semi-async, issued here), then every
//! acknowledged write read back through the router. Runs only when `SLOTCHECK_PIKIWIDB_SERVER`
//! names a pika binary; the servers are started and stopped (by pid) here.

use checker::RedirectKind;
use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::Duration;
use workloads::codis::pika_conf::write_pika_config;
use workloads::codis::{CodisRouter, CodisTable, MigrationMode};
use workloads::RouterConfig;

/// One pika process with its own directory; killed by pid when dropped.
struct Pika {
    child: Child,
    addr: String,
}

impl Drop for Pika {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(bin: &str, dir: &std::path::Path, port: u16) -> Pika {
    let path = write_pika_config(dir, port).unwrap();
    let out = std::fs::File::create(dir.join("stdout.log")).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&path)
        .current_dir(dir)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    Pika {
        child,
        addr: format!("127.0.0.1:{port}"),
    }
}

/// Bases a run may use, 20 ports apart: the servers sit at base, +3, +10 and +13.
const BASES: u16 = 38;
/// The lowest base; the highest server's rsync port (+10001) stays below the kernel's ephemeral
/// range (32768).
const BASE_MIN: u16 = 22000;

/// A base whose servers' ports are all free now (each binds its port and port+10001 on
/// 127.0.0.1, and port+2000 on 0.0.0.0), scanning from one picked by the process id.
fn free_base() -> u16 {
    let bindable = |host: &str, p: u16| std::net::TcpListener::bind((host, p)).is_ok();
    let free = |p: u16| {
        bindable("127.0.0.1", p)
            && bindable("0.0.0.0", p + 2000)
            && bindable("127.0.0.1", p + 10001)
    };
    let start = (std::process::id() % u32::from(BASES)) as u16;
    (0..BASES)
        .map(|i| BASE_MIN + (start + i) % BASES * 20)
        .find(|&b| [0, 3, 10, 13].iter().all(|o| free(b + o)))
        .expect("no free ports for two pika servers")
}

async fn conn(addr: &str) -> redis::aio::MultiplexedConnection {
    for _ in 0..60 {
        if let Ok(client) = redis::Client::open(format!("redis://{addr}")) {
            if let Ok(mut c) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> = redis::cmd("PING").query_async(&mut c).await;
                if pong.is_ok() {
                    return c;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{addr} did not answer PING");
}

async fn write(router: &mut CodisRouter, key: &str, v: u64) -> workloads::Execution {
    let cmd = redis::cmd("SET").arg(key).arg(v).clone();
    router.execute(key.as_bytes(), &cmd).await
}

async fn run(bin: &str, mode: MigrationMode, base: u16) -> BTreeMap<RedirectKind, u64> {
    let root = std::env::temp_dir().join(format!(
        "codis-router-{}-{}",
        std::process::id(),
        mode.name()
    ));
    let _ = std::fs::remove_dir_all(&root);
    let a = spawn(bin, &root.join("a"), base);
    let b = spawn(bin, &root.join("b"), base + 3);
    let mut ca = conn(&a.addr).await;
    let _cb = conn(&b.addr).await;
    let servers = vec![a.addr.clone(), b.addr.clone()];
    let table = CodisTable::new(&servers, mode).shared();
    // A tag whose slot `a` owns.
    let (tag, slot) = (0..)
        .map(|j| format!("{{m{j}}}"))
        .map(|t| (t.clone(), table.read().unwrap().route_key(t.as_bytes())))
        .find(|(_, (_, r))| &*r.owner == a.addr.as_str())
        .map(|(t, (s, _))| (t, s))
        .unwrap();
    // Semi-async keeps few retries: PikiwiDB 4.0 may answer 1 for a key for a long time.
    let (hops_max, rounds) = match mode {
        MigrationMode::Sync => (16, 300u64),
        MigrationMode::SemiAsync => (6, 5),
    };
    let config = RouterConfig {
        hops_max,
        backoff_ms_max: 50,
        ..RouterConfig::default()
    };
    let mut router = CodisRouter::new(table.clone(), config);
    let keys: Vec<String> = (0..200).map(|i| format!("{tag}:k{i}")).collect();
    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let mut hops: BTreeMap<RedirectKind, u64> = BTreeMap::new();
    let (mut ok, mut failed) = (0, 0);
    for (i, k) in keys.iter().enumerate().take(100) {
        let e = write(&mut router, k, i as u64).await;
        assert!(e.result.is_ok(), "{k}: {:?}", e.result);
        acked.insert(k.clone(), i as u64);
    }
    table.write().unwrap().begin_migration(slot, &b.addr);
    let (host, port) = b.addr.rsplit_once(':').unwrap();
    let start = match mode {
        MigrationMode::Sync => redis::cmd("SLOTSMGRTTAGSLOT")
            .arg(host)
            .arg(port)
            .arg(1000)
            .arg(slot)
            .clone(),
        MigrationMode::SemiAsync => redis::cmd("SLOTSMGRTTAGSLOT-ASYNC")
            .arg(host)
            .arg(port)
            .arg(5000)
            .arg(200)
            .arg(32 << 20)
            .arg(slot)
            .arg(10)
            .clone(),
    };
    for round in 0..rounds {
        let r: redis::RedisResult<redis::Value> = start.query_async(&mut ca).await;
        if round == 0 {
            println!("{}: {r:?}", mode.name());
        }
        for (i, k) in keys.iter().enumerate() {
            if i % 7 != (round % 7) as usize {
                continue;
            }
            let v = 1000 * (round + 1) + i as u64;
            let e = write(&mut router, k, v).await;
            for h in &e.redirects {
                *hops.entry(h.kind).or_default() += 1;
            }
            match e.result {
                Ok(_) => {
                    ok += 1;
                    acked.insert(k.clone(), v);
                }
                Err(err) => {
                    failed += 1;
                    if failed <= 3 {
                        println!("{k}: {err}");
                    }
                }
            }
        }
        let left: i64 = redis::cmd("EXISTS")
            .arg(&keys)
            .query_async(&mut ca)
            .await
            .unwrap();
        if left == 0 && round > 2 {
            break;
        }
    }
    table.write().unwrap().finish_migration(slot);
    let mut lost = Vec::new();
    for (k, v) in &acked {
        let e = router
            .execute(k.as_bytes(), &redis::cmd("GET").arg(k).clone())
            .await;
        let got: Option<u64> = match e.result {
            Ok(redis::Value::BulkString(b)) => {
                String::from_utf8(b).ok().and_then(|s| s.parse().ok())
            }
            _ => None,
        };
        if got != Some(*v) {
            lost.push((k.clone(), *v, got));
        }
    }
    println!(
        "{}: slot {slot}, {} keys, writes during migration ok {ok} failed {failed}, hops {hops:?}, \
         acknowledged writes not read back {}",
        mode.name(),
        keys.len(),
        lost.len()
    );
    drop((a, b));
    let _ = std::fs::remove_dir_all(&root);
    assert!(
        lost.is_empty(),
        "{} lost: {:?}",
        mode.name(),
        &lost[..lost.len().min(5)]
    );
    hops
}

#[tokio::test(flavor = "current_thread")]
async fn codis_router_crosses_migrating_slots() {
    let Ok(bin) = std::env::var("SLOTCHECK_PIKIWIDB_SERVER") else {
        println!("skipped: set SLOTCHECK_PIKIWIDB_SERVER to a pika binary to run against PikiwiDB");
        return;
    };
    let base = free_base();
    let sync = run(&bin, MigrationMode::Sync, base).await;
    assert!(
        sync.get(&RedirectKind::MgrtOne).copied().unwrap_or(0) > 0,
        "{sync:?}"
    );
    let semi = run(&bin, MigrationMode::SemiAsync, base + 10).await;
    assert!(semi.keys().all(|k| k.is_codis()), "{semi:?}");
}
