//! Against a real Redis Cluster with one slot held half-migrated: the paths the two injected
//! `ASK` client bugs record, and the structured give-up at the hop limit, beside a correct router.

mod cluster;

use checker::{GaveUp, RedirectKind};
use cluster::{cli, Cluster};
use redis::Value;
use workloads::{key_slot, ClientBug, OpError, Router, RouterConfig, SlotMap};

/// Four hops, so the loops end quickly.
const HOPS_MAX: u32 = 4;

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

fn node_id(addr: &str) -> String {
    cli(port_of(addr), &["CLUSTER", "MYID"]).trim().to_string()
}

async fn router(seeds: &[String], bug: Option<ClientBug>) -> Router {
    let config = RouterConfig {
        hops_max: HOPS_MAX,
        bug,
        ..RouterConfig::default()
    };
    let mut router = Router::new(seeds.to_vec(), SlotMap::new().shared(), config);
    router.refresh_slot_map().await.unwrap();
    router
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_bugs_record_their_paths_and_give_up() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let seeds = cluster.seeds();
    let key = "{askbug}k";
    let slot = key_slot(key.as_bytes());
    let mut correct = router(&seeds, None).await;
    let source = correct
        .slot_map()
        .read()
        .unwrap()
        .owner(slot)
        .unwrap()
        .to_string();
    let target = seeds.iter().find(|a| **a != source).unwrap().clone();
    let slot_s = slot.to_string();
    let (sid, tid) = (node_id(&source), node_id(&target));
    cli(
        port_of(&target),
        &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &sid],
    );
    cli(
        port_of(&source),
        &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &tid],
    );
    let set = redis::cmd("SET").arg(key).arg(1).clone();
    let path = |e: &workloads::Execution| -> Vec<(RedirectKind, String, String)> {
        e.redirects
            .iter()
            .map(|r| (r.kind, r.from.clone(), r.to.clone()))
            .collect()
    };
    let ask = (RedirectKind::Ask, source.clone(), target.clone());
    let back = (RedirectKind::Moved, target.clone(), source.clone());

    // ask-as-moved: every attempt goes back to the source, which ASKs again; the target is never
    // sent the command, and the map still names the source.
    let mut bugged = router(&seeds, Some(ClientBug::AskAsMoved)).await;
    let e = bugged.execute(key.as_bytes(), &set).await;
    assert!(
        matches!(&e.result, Err(OpError::Fail(t)) if t.starts_with("gave up after 4 hops: ASK")),
        "{e:?}"
    );
    assert_eq!(path(&e), vec![ask.clone(); HOPS_MAX as usize]);
    let gave_up = e.gave_up.clone().expect("gave_up at the hop limit");
    assert_eq!(
        gave_up,
        GaveUp::new(RedirectKind::Ask, &format!("ASK {slot} {target}"), 4)
    );
    assert_eq!(e.node, source);
    let owner = bugged
        .slot_map()
        .read()
        .unwrap()
        .owner(slot)
        .map(str::to_string);
    assert_eq!(owner.as_deref(), Some(source.as_str()));

    // ask-without-asking: the target sends it back with MOVED, the source ASKs again.
    let mut bugged = router(&seeds, Some(ClientBug::AskWithoutAsking)).await;
    let e = bugged.execute(key.as_bytes(), &set).await;
    assert_eq!(path(&e), vec![ask.clone(), back.clone(), ask.clone(), back]);
    let gave_up = e.gave_up.clone().expect("gave_up at the hop limit");
    assert_eq!((gave_up.kind, gave_up.hops), (RedirectKind::Ask, 4));
    assert!(matches!(&e.result, Err(OpError::Fail(_))), "{e:?}");

    // Neither wrote anything; a correct router takes one ASK hop and writes at the target.
    for node in [&source, &target] {
        assert_eq!(cli(port_of(node), &["DBSIZE"]).trim(), "0", "{node}");
    }
    let e = correct.execute(key.as_bytes(), &set).await;
    assert_eq!((e.result.clone(), path(&e)), (Ok(Value::Okay), vec![ask]));
    assert_eq!((e.node.as_str(), e.gave_up), (target.as_str(), None));
    drop(cluster);
}
