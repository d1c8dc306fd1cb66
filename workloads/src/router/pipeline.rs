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
use redis::{Cmd, RedisError};
use tokio::task::JoinSet;

/// The commands of one pipeline that go to one node first: the hop and the items' indexes.
type Group = (Hop, Vec<usize>);

/// Where each command of a pipeline stands: on its way (`Some`), or ended and reported (`None`).
type States = Vec<Option<Next>>;

/// Told each command's end as it comes: its index in the pipeline and how it ended.
pub type OnDone<'a> = &'a mut (dyn FnMut(usize, Execution) + Send);

impl Router {
    /// Sends every `(key, command)` of `items` as one pipeline per node, a redirected command
    /// followed on its own, and tells `on_done` each command's end as soon as it is known: those
    /// answered in their node's batch when that batch's replies are read, the redirected ones when
    /// their own trips end.
    pub async fn execute_pipeline(&mut self, items: &[(Vec<u8>, Cmd)], on_done: OnDone<'_>) {
        // Every end goes out as the client reports it, as for a single op.
        let finished = self.bugs.finisher();
        let mut reported = |i: usize, done: Execution| on_done(i, finished(done));
        let on_done: OnDone<'_> = &mut reported;
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
        let mut states: States = Vec::with_capacity(items.len());
        for (key, cmd) in items {
            let mut trip = Trip::new(key_slot(key), self.config.backoff_ms_first);
            states.push(Some(match self.first_hop(trip.slot, cmd).await {
                Ok(hop) => Next::Hop(hop),
                Err(e) => Next::Done(trip.finish(Err(OpError::Fail(e)), String::new())),
            }));
            trips.push(trip);
        }
        for i in 0..states.len() {
            report(&mut states, i, on_done);
        }
        self.send_groups(items, &mut trips, &mut states, on_done)
            .await;
        for (i, ((state, trip), (_, cmd))) in
            states.into_iter().zip(&mut trips).zip(items).enumerate()
        {
            let Some(mut next) = state else { continue };
            // A command a redirect sent elsewhere continues its trip on its own.
            let execution = loop {
                next = match next {
                    Next::Done(execution) => break execution,
                    Next::Hop(hop) => self.step(trip, cmd, hop).await,
                };
            };
            on_done(i, execution);
        }
    }

    /// Sends each group of the items still at their first hop as one pipeline to its node, all
    /// groups at once, and decides every command of a group from its reply, reporting those
    /// that ended.
    async fn send_groups(
        &mut self,
        items: &[(Vec<u8>, Cmd)],
        trips: &mut [Trip],
        states: &mut States,
        on_done: OnDone<'_>,
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
                        let failed = trips[i].finish(Err(OpError::Fail(text)), addr.clone());
                        states[i] = Some(Next::Done(failed));
                        report(states, i, on_done);
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
                Ok(replies) => {
                    self.conns.insert(hop.0.clone(), conn);
                    replies.into_iter().map(Ok).collect()
                }
                // The connection is out of step (it was not put back): any command may have run.
                Err(text) => vec![Err(text); members.len()],
            };
            for (&i, reply) in members.iter().zip(replies) {
                let next = match reply {
                    Ok(Ok(value)) => {
                        self.decide(&mut trips[i], hop.clone(), Reply::Value(value))
                            .await
                    }
                    Ok(Err(e)) => {
                        self.pipelined(&mut trips[i], &items[i].1, hop.clone(), e)
                            .await
                    }
                    Err(text) => self.after_lost(&mut trips[i], hop.clone(), text),
                };
                states[i] = Some(next);
                report(states, i, on_done);
            }
        }
        for (g, (hop, members)) in groups.iter().enumerate() {
            if !answered[g] {
                for &i in members {
                    let text = "the pipeline's task ended without a reply".to_string();
                    let lost = trips[i].finish(Err(OpError::Info(text)), hop.0.clone());
                    states[i] = Some(Next::Done(lost));
                    report(states, i, on_done);
                }
            }
        }
    }

    /// Decides one command from its error reply inside a pipeline: as a single command's,
    /// unless an injected bug (`pipeline-ask-drop`) takes an `ASK` for a success.
    async fn pipelined(&mut self, trip: &mut Trip, cmd: &Cmd, hop: Hop, err: RedisError) -> Next {
        if let Some(value) = self.bugs.dropped_ask(&err, cmd) {
            return Next::Done(trip.finish(Ok(value), hop.0));
        }
        self.decide(trip, hop, Reply::Error(err)).await
    }
}

/// Tells `on_done` of command `i` if it has ended, and marks it reported.
fn report(states: &mut [Option<Next>], i: usize, on_done: OnDone<'_>) {
    if let Some(Next::Done(_)) = &states[i] {
        if let Some(Next::Done(execution)) = states[i].take() {
            on_done(i, execution);
        }
    }
}

/// The items still at their first hop, grouped by that hop (node and prefix), in order of first
/// appearance; each group keeps its items in pipeline order.
fn group(states: &[Option<Next>]) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let Some(Next::Hop(hop)) = state else {
            continue;
        };
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
        let hop = |addr: &str, prefix| Some(Next::Hop((addr.to_string(), prefix)));
        let done = || Some(Next::Done(Execution::failed(b"k", "no owner")));
        let states = [
            hop("a:1", None),
            hop("b:1", None),
            done(),
            hop("a:1", None),
            hop("a:1", Some("READONLY")),
            hop("b:1", None),
            None,
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
