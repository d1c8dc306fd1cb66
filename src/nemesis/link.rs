//! Latency, loss and resets on a node's client link: `slow` / `fast`, through the fault proxy the
//! harness starts in front of every node (`ClusterSpec::proxy`, `harness::proxy`).
//!
//! ```no_run
//! # fn demo(ctx: &slotcheck::nemesis::Ctx) -> Result<(), slotcheck::nemesis::error::NemesisError> {
//! use slotcheck::harness::proxy::Faults;
//! use slotcheck::nemesis::link;
//! let node = ctx.cluster.nodes[0].addr.clone();
//! link::slow(ctx, &node, &Faults { delay_ms: 50, jitter_ms: 10, ..Faults::NONE })?;
//! let stats = link::fast(ctx, &node)?;
//! # Ok(()) }
//! ```

use serde_json::json;

use super::error::NemesisError;
use super::schedule::Planned;
use super::Ctx;
use crate::harness::proxy::{Faults, Proxy, ProxyStats, RTO_MS_DEFAULT};
use crate::harness::HarnessError;

/// The faults a scheduled `slow` applies, chosen by its `variant` (delay 10, 30, 60 or 100 ms
/// with a quarter of it as jitter; loss 0, 2 or 10 %; resets 0 or 0.2 %) and seeded by its
/// indexes, so the same schedule gives the same faults.
pub fn planned(p: &Planned) -> Faults {
    const DELAYS_MS: [u64; 4] = [10, 30, 60, 100];
    const LOSSES: [f64; 3] = [0.0, 0.02, 0.1];
    const RESETS: [f64; 2] = [0.0, 0.002];
    let v = p.variant as usize;
    let delay_ms = DELAYS_MS[v % DELAYS_MS.len()];
    Faults {
        delay_ms,
        jitter_ms: delay_ms / 4,
        loss: LOSSES[v / DELAYS_MS.len() % LOSSES.len()],
        rto_ms: RTO_MS_DEFAULT,
        reset: RESETS[v / (DELAYS_MS.len() * LOSSES.len()) % RESETS.len()],
        seed: u64::from(p.target) << 32 | u64::from(p.variant),
    }
}

/// Sets `faults` on the proxy of the node at `addr`, recorded as `slow` with `phase` `begin` and
/// `end`: `node`, `proxy`, `delay_ms`, `jitter_ms`, `loss`, `rto_ms`, `reset`, `seed`.
pub fn slow(ctx: &Ctx, addr: &str, faults: &Faults) -> Result<(), NemesisError> {
    let proxy = proxy_of(ctx, addr)?;
    let mut value = serde_json::to_value(faults).expect("faults serialize");
    value["node"] = json!(addr);
    value["proxy"] = json!(proxy.addr());
    ctx.begin("slow", value.clone());
    proxy.take_stats();
    let result = proxy.set_faults(*faults).map_err(NemesisError::from);
    let error = result.as_ref().err().map(|e| e.to_string());
    ctx.end("slow", value, error.as_deref());
    result
}

/// Takes every fault off the proxy of the node at `addr`, the inverse of `slow`; recorded as
/// `fast` (`node`, `proxy`), whose `end` carries what the proxy did since `slow`.
pub fn fast(ctx: &Ctx, addr: &str) -> Result<ProxyStats, NemesisError> {
    let proxy = proxy_of(ctx, addr)?;
    let value = json!({"node": addr, "proxy": proxy.addr()});
    ctx.begin("fast", value.clone());
    proxy.set_faults(Faults::NONE)?;
    let stats = proxy.take_stats();
    let mut end = value;
    end["stats"] = json!(stats);
    ctx.end("fast", end, None);
    Ok(stats)
}

/// The proxy in front of the node at `addr`, or why `slow` cannot apply to it.
fn proxy_of<'a>(ctx: &'a Ctx, addr: &str) -> Result<&'a Proxy, HarnessError> {
    if ctx.cluster.node(addr).is_none() {
        return Err(HarnessError::InvalidFault(format!(
            "{addr} is not a node of this cluster"
        )));
    }
    ctx.cluster
        .proxy(addr)
        .ok_or_else(|| HarnessError::Unavailable {
            what: "client latency and loss".to_string(),
            why: "the cluster was started without proxies (ClusterSpec::proxy)".to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::schedule::FaultKind;

    #[test]
    fn planned_faults_are_valid_and_follow_the_schedule() {
        let p = |variant| Planned {
            at_ms: 0,
            kind: FaultKind::Kill,
            target: 9,
            variant,
            hold_ms: 0,
        };
        for variant in 0..100 {
            let f = planned(&p(variant));
            assert!(f.validate().is_ok() && f.delay_ms > 0, "{f:?}");
            assert_eq!(f, planned(&p(variant)));
        }
        assert!((0..24).any(|v| planned(&p(v)).loss > 0.0));
        assert!((0..24).any(|v| planned(&p(v)).reset > 0.0));
    }
}
