//! A complete configuration for one pika (PikiwiDB 4.0) server, the one definition of it: the
//! harness (`slotcheck`'s `pika` module) and the router's tests against real servers both write
//! it from here, the lowest crate both reach. It is pika 4.0's `conf/pika.conf` as shipped, with
//! what a test server needs: foreground, slot migration on, loopback only, every path under the
//! server's own directory, and smaller pools and buffers (see [`DEFAULTS`]).

use std::path::{Path, PathBuf};

/// The directories under a server's directory that its configuration names.
const SUBDIRS: [&str; 4] = ["db", "log", "dump", "dbsync"];

/// The text of `pika.conf` for a server listening on `port` whose files all live under `dir`.
pub fn pika_config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    let mut conf = format!(
        "port : {port}\ndaemonize : no\nslotmigrate : yes\nnetwork-interface : lo\nmaxclients : 10000\n\
         db-path : {d}/db/\nlog-path : {d}/log/\ndump-path : {d}/dump/\ndb-sync-path : {d}/dbsync/\n\
         pidfile : {d}/pika.pid\n"
    );
    conf.push_str(DEFAULTS);
    conf
}

/// Creates `dir` and the directories its configuration names, and writes `<dir>/pika.conf`
/// ([`pika_config`]); returns the file's path. An error says which step failed.
pub fn write_pika_config(dir: &Path, port: u16) -> std::io::Result<PathBuf> {
    let context = |what: String| {
        move |e: std::io::Error| std::io::Error::new(e.kind(), format!("{what}: {e}"))
    };
    for sub in SUBDIRS {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).map_err(context(format!("create {}", path.display())))?;
    }
    let file = dir.join("pika.conf");
    std::fs::write(&file, pika_config(dir, port))
        .map_err(context(format!("write {}", file.display())))?;
    Ok(file)
}

/// The remaining keys of pika 4.0's `conf/pika.conf`, as shipped, but with smaller thread pools
/// (the machine is shared and the servers are local) and 4 MB write buffers: RocksDB
/// preallocates each WAL at 1.1 times the buffer, and with the shipped 256 MB every server took
/// 860 MB of disk (3 instances) before its first write. Without `db-instance-num` pika aborts at
/// start-up (`db-instance-num load error`), so the file must be complete.
pub const DEFAULTS: &str = "\
db-instance-num : 3
rocksdb-ttl-second : 604800
rocksdb-periodic-second : 259200
thread-num : 1
thread-pool-size : 4
slow-cmd-pool : no
slow-cmd-thread-pool-size : 1
sync-thread-num : 2
sync-binlog-thread-num : 1
write-buffer-size : 4M
timeout : 60
requirepass :
masterauth :
instance-mode : classic
databases : 1
replication-num : 0
consensus-level : 0
dump-prefix :
dump-expire : 0
target-file-size-base : 20M
expire-logs-days : 7
expire-logs-nums : 10
root-connection-num : 2
slowlog-write-errorlog : no
slowlog-log-slower-than : 10000
slowlog-max-len : 128
db-sync-speed : -1
slave-priority : 100
disable_auto_compactions : false
max-subcompactions : 1
sync-window-size : 9000
max-conn-rbuf-size : 268435456
write-binlog : yes
binlog-file-size : 104857600
max-cache-statistic-keys : 0
small-compaction-threshold : 5000
small-compaction-duration-threshold : 10000
max-write-buffer-size : 10737418240
max-write-buffer-num : 2
min-write-buffer-number-to-merge : 1
max-total-wal-size : 1073741824
level0-stop-writes-trigger : 36
level0-slowdown-writes-trigger : 20
level0-file-num-compaction-trigger : 4
max-client-response-size : 1073741824
compression : snappy
max-background-jobs : 3
max-background-flushes : -1
max-background-compactions : -1
delayed-write-rate : 0
max-compaction-bytes : -1
max-cache-files : 5000
max-bytes-for-level-multiplier : 10
slotmigrate-thread-num : 1
thread-migrate-keys-num : 64
default-slot-num : 1024
throttle-bytes-per-second : 207200000
rsync-timeout-ms : 1000
max-rsync-parallel-num : 4
cache-num : 16
cache-model : 1
cache-type: string, set, zset, list, hash, bit
zset-cache-field-num-per-key : 512
zset-cache-start-direction : 0
cache-maxmemory : 10737418240
cache-maxmemory-policy : 1
cache-maxmemory-samples: 5
cache-lfu-decay-time: 1
";
