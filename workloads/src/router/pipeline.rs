//! Pipelines: several single-key commands written at once, one batch per node, each command
//! still an op of its own. The router groups the commands by the node their first hop goes to
//! (the slot's owner), writes each group in one request with [`conn::send_pipeline`] (the groups
//! of different nodes at the same time), and reads one reply per command, in order. A command
//! answered with a value or an error ends there; one answered with a redirect (`MOVED`, `ASK`,
//! `TRYAGAIN`, `CLUSTERDOWN`) continues its own trip alone, by the router's step and follow
//! logic, its hops recorded on its own [`Execution`]. A batch that got no whole answer (a
//! timeout, an I/O or parse error) leaves every command in it unknown (`info`): any may have run.

use super::{Execution, Hop, Next, OpError, Router, Trip};
use crate::conn::{self, Reply};
use crate::slot::key_slot;
use redis::Cmd;
use tokio::task::JoinSet;

/// The commands of one pipeline that go to one node first: the hop and the items' indexes.
type Group = (Hop, Vec<usize>);

impl Router {
    /// Sends every `(key, command)` of `items` as one pipeline per node and returns one
    /// [`Execution`] per item, in order; a redirected command is followed on its own.
    pub async fn execute_pipeline(&mut self, items: &[(Vec<u8>, Cmd)]) -> Vec<Execution> {
        let mut learn = false;
        for (key, cmd) in items {
            learn |= self
                .bugs
                .wants_refresh(key_slot(key), cmd, &super::read_map(&self.slots));
        }
        if std::mem::take(&mut self.stale) || learn {
            // Best effort, as for a single op: route by the old map if no node answers.
            let _ = self.refresh_slot_map().await;
        }
        let mut trips = Vec::with_capacity(items.len());
        let mut states = Vec::with_capacity(items.len());
        for (key, cmd) in items {
            let mut trip = Trip::new(key_slot(key), self.config.backoff_ms_first);
            states.push(match self.first_hop(trip.slot, cmd).await {
                Ok(hop) => Next::Hop(hop),
                Err(e) => Next::Done(trip.finish(Err(OpError::Fail(e)), String::new())),
            });
            trips.push(trip);
        }
        self.send_groups(items, &mut trips, &mut states).await;
        let mut done = Vec::with_capacity(items.len());
        for ((mut next, trip), (_, cmd)) in states.into_iter().zip(&mut trips).zip(items) {
            // A command a redirect sent elsewhere continues its trip on its own.
            let execution = loop {
                next = match next {
                    Next::Done(execution) => break execution,
                    Next::Hop(hop) => self.step(trip, cmd, hop).await,
                };
            };
            done.push(execution);
        }
        done
    }

    /// Sends each group of the items still at their first hop as one pipeline to its node, all
    /// groups at once, and decides every command of a group from its reply.
    async fn send_groups(
        &mut self,
        items: &[(Vec<u8>, Cmd)],
        trips: &mut [Trip],
        states: &mut [Next],
    ) {
        let groups = group(states);
        let timeout = self.timeout();
        let mut sends = JoinSet::new();
        for (g, ((addr, prefix), members)) in groups.iter().enumerate() {
            let conn = match self.conns.remove(addr) {
                Some(conn) => Ok(conn),
                None => conn::connect(addr, timeout).await,
            };
            let mut conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    // Nothing was sent: every command of the group fails.
                    self.stale = true;
                    for &i in members {
                        let text = format!("connect to {addr}: {e}");
                        states[i] =
                            Next::Done(trips[i].finish(Err(OpError::Fail(text)), addr.clone()));
                    }
                    continue;
                }
            };
            let cmds: Vec<Cmd> = members.iter().map(|&i| items[i].1.clone()).collect();
            let prefix = *prefix;
            sends.spawn(async move {
                let refs: Vec<&Cmd> = cmds.iter().collect();
                let replies = conn::send_pipeline(&mut conn, &refs, prefix, timeout).await;
                (g, conn, replies)
            });
        }
        let mut answered = vec![false; groups.len()];
        while let Some(joined) = sends.join_next().await {
            let Ok((g, conn, replies)) = joined else {
                continue; // its group stays unanswered, below
            };
            answered[g] = true;
            let (hop, members) = &groups[g];
            let replies = match replies {
                Ok(replies) => replies,
                Err(text) => {
                    // The connection is out of step (it was not put back): any command may have run.
                    for &i in members {
                        states[i] = self.after_lost(&mut trips[i], hop.clone(), text.clone());
                    }
                    continue;
                }
            };
            self.conns.insert(hop.0.clone(), conn);
            for (&i, reply) in members.iter().zip(replies) {
                let reply = match reply {
                    Ok(value) => Reply::Value(value),
                    Err(e) => Reply::Error(e),
                };
                states[i] = self
                    .pipelined(&mut trips[i], &items[i].1, hop.clone(), reply)
                    .await;
            }
        }
        for (g, (hop, members)) in groups.iter().enumerate() {
            if !answered[g] {
                for &i in members {
                    let text = "the pipeline's task ended without a reply".to_string();
                    states[i] =
                        Next::Done(trips[i].finish(Err(OpError::Info(text)), hop.0.clone()));
                }
            }
        }
    }

    /// Decides one command from its reply inside a pipeline: as a single command's reply,
    /// unless an injected bug (`pipeline-ask-drop`) takes an `ASK` for a success.
    async fn pipelined(&mut self, trip: &mut Trip, cmd: &Cmd, hop: Hop, reply: Reply) -> Next {
        if let Reply::Error(e) = &reply {
            if let Some(value) = self.bugs.dropped_ask(e, cmd) {
                return Next::Done(trip.finish(Ok(value), hop.0));
            }
        }
        self.decide(trip, hop, reply).await
    }
}

/// The items still at their first hop, grouped by that hop (node and prefix), in order of first
/// appearance; each group keeps its items in pipeline order.
fn group(states: &[Next]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let Next::Hop(hop) = state else { continue };
        match groups.iter_mut().find(|(h, _)| h == hop) {
            Some((_, members)) => members.push(i),
            None => groups.push((hop.clone(), vec![i])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_pipeline_order_by_first_hop() {
        let hop = |addr: &str, prefix| Next::Hop((addr.to_string(), prefix));
        let done = || Next::Done(Execution::failed(b"k", "no owner"));
        let states = [
            hop("a:1", None),
            hop("b:1", None),
            done(),
            hop("a:1", None),
            hop("a:1", Some("READONLY")),
            hop("b:1", None),
        ];
        let groups = group(&states);
        let want: Vec<Group> = vec![
            (("a:1".into(), None), vec![0, 3]),
            (("b:1".into(), None), vec![1, 5]),
            (("a:1".into(), Some("READONLY")), vec![4]),
        ];
        assert_eq!(groups, want);
    }
}
