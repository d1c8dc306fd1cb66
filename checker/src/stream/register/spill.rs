//! Spilling the register's compact ops to temporary files once they outgrow a memory budget, so
//! that a history of any size is checked in bounded memory.
//!
//! Past the budget every op kept so far, and every op after it, is written to one of
//! [`PARTITIONS`] temporary files, chosen by its key's index (anonymous files in the system's
//! temp dir, `TMPDIR`, 56 bytes an op, gone when the check ends however it ends). The keys are
//! then checked a batch of partitions at a time, a batch being as many partitions as fit in the
//! budget (at least one): a key's ops are read back only while its batch is checked. One key's
//! ops all go to one file, appended in the order they came, so each key is searched over the same
//! ops in the same order as in memory, and its verdict, steps and explanation are the same; the
//! reports are put back in key order at the end. The search itself needs all of one key's ops at
//! once: a partition bigger than the budget (one huge key, say) is read whole, alone.

use super::{check_key, Compact, KeyOps};
use crate::model::register::{Register, RegisterOp};
use crate::op::Outcome;
use crate::report::KeyReport;
use crate::wgl::Budget;
use rayon::prelude::*;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;

/// Files the ops are spread over, by key index modulo this.
pub(super) const PARTITIONS: usize = 128;
/// Write and read buffer per partition file.
const BUFFER_BYTES: usize = 64 << 10;
/// Bytes of one op on disk: its key index, then the [`Compact`] (see [`encode`]).
const RECORD_BYTES: usize = 56;

/// What a batch's slots hold until its ops are read in.
const PLACEHOLDER: Compact = Compact {
    input: RegisterOp::Read(None),
    outcome: Outcome::Info,
    process: 0,
    invoke_ns: 0,
    complete_ns: 0,
    invoke_event: 0,
    invoke_line: 0,
    f: 0,
};

/// The partition files being written, each made at its first op.
pub(super) struct Spill {
    files: Vec<Option<BufWriter<File>>>,
    /// The first error met; later writes are skipped and [`Spill::finish`] returns it.
    error: Option<io::Error>,
}

/// The partition of key index `key`.
pub(super) fn partition(key: usize) -> usize {
    key % PARTITIONS
}

impl Spill {
    /// No files yet.
    pub(super) fn new() -> Spill {
        Spill {
            files: (0..PARTITIONS).map(|_| None).collect(),
            error: None,
        }
    }

    /// Appends `op` of key index `key` to its partition's file.
    pub(super) fn write(&mut self, key: u32, op: &Compact) {
        if self.error.is_some() {
            return;
        }
        let slot = &mut self.files[partition(key as usize)];
        let file = match slot {
            Some(file) => file,
            None => match tempfile::tempfile() {
                Ok(file) => slot.insert(BufWriter::with_capacity(BUFFER_BYTES, file)),
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            },
        };
        if let Err(e) = file.write_all(&encode(key, op)) {
            self.error = Some(e);
        }
    }

    /// Flushes every file and rewinds it for reading; per partition, its file if any op went to it.
    fn finish(self) -> io::Result<Vec<Option<File>>> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.files
            .into_iter()
            .map(|file| {
                let Some(file) = file else { return Ok(None) };
                let mut file = file.into_inner().map_err(|e| e.into_error())?;
                file.seek(SeekFrom::Start(0))?;
                Ok(Some(file))
            })
            .collect()
    }
}

/// Checks every key whose ops went to `spill` (or stayed in `keys`, if they kept none), a batch
/// of partitions at a time, each batch's keys in parallel; returns the key reports in key order.
/// A batch holds at most `batch_bytes_max` bytes of ops, or one partition. `all_ops` counts the
/// kept ops of every key, for each key's share of the budget ([`Budget::for_key`]).
pub(super) fn check_spilled(
    spill: Spill,
    keys: Vec<KeyOps>,
    names: &[String],
    model: &Register,
    (budget, all_ops): (&Budget, usize),
    batch_bytes_max: usize,
) -> io::Result<Vec<KeyReport>> {
    debug_assert_eq!(keys.len(), names.len());
    let mut files = spill.finish()?;
    let op_bytes = std::mem::size_of::<Compact>();
    let mut partition_bytes = vec![0usize; PARTITIONS];
    for (k, key) in keys.iter().enumerate() {
        debug_assert!(key.kept.is_empty(), "every kept op was spilled");
        partition_bytes[partition(k)] += key.kept_count * op_bytes;
    }
    let mut reports = Vec::with_capacity(keys.len());
    // Per key index, where its next op goes in the batch being read.
    let mut cursor = vec![0usize; keys.len()];
    let mut first = 0;
    while first < PARTITIONS {
        let mut end = first + 1;
        let mut bytes = partition_bytes[first];
        while end < PARTITIONS && bytes + partition_bytes[end] <= batch_bytes_max {
            bytes += partition_bytes[end];
            end += 1;
        }
        // The batch's ops in one allocation, each key's a run of it: one block the allocator
        // gives back whole when the batch is done, where thousands of per-key vectors of varied
        // sizes would leave the heap fragmented and the process bigger batch after batch.
        let mut runs: Vec<(usize, Range<usize>)> = Vec::new();
        let mut len = 0;
        for k in (0..keys.len()).filter(|&k| (first..end).contains(&partition(k))) {
            cursor[k] = len;
            runs.push((k, len..len + keys[k].kept_count));
            len += keys[k].kept_count;
        }
        let mut ops = vec![PLACEHOLDER; len];
        for file in files[first..end].iter_mut().filter_map(Option::take) {
            read_partition(file, |key, op| {
                let at = &mut cursor[key as usize];
                ops[*at] = op;
                *at += 1;
            })?;
        }
        debug_assert!(runs.iter().all(|(k, run)| cursor[*k] == run.end));
        let checked: Vec<KeyReport> = runs
            .into_par_iter()
            .map(|(k, run)| {
                let budget = budget.for_key(run.len(), all_ops);
                check_key(&names[k], keys[k].ops, &ops[run], model, &budget)
            })
            .collect();
        reports.extend(checked);
        first = end;
    }
    reports.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Ok(reports)
}

/// Hands every op of a partition's file to `push`, with its key index, in the order written.
fn read_partition(file: File, mut push: impl FnMut(u32, Compact)) -> io::Result<()> {
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, file);
    let mut record = [0u8; RECORD_BYTES];
    loop {
        match reader.read_exact(&mut record) {
            Ok(()) => {
                let (key, op) = decode(&record)?;
                push(key, op);
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// `key`, then `op`: input kind, whether its first value is present, outcome, `f`, two values,
/// process, invocation and completion times, invocation event and line; little-endian.
fn encode(key: u32, op: &Compact) -> [u8; RECORD_BYTES] {
    let (kind, a, b) = match op.input {
        RegisterOp::Read(v) => (0, v, 0),
        RegisterOp::Write(v) => (1, Some(v), 0),
        RegisterOp::Cas { expected, new } => (2, expected, new),
        RegisterOp::CasFailed(v) => (3, v, 0),
        RegisterOp::Delete => (4, None, 0),
    };
    let outcome = match op.outcome {
        Outcome::Ok => 0,
        Outcome::Fail => 1,
        Outcome::Info => 2,
    };
    let mut out = [0u8; RECORD_BYTES];
    out[0..4].copy_from_slice(&key.to_le_bytes());
    out[4] = kind;
    out[5] = u8::from(a.is_some());
    out[6] = outcome;
    out[7] = op.f;
    out[8..16].copy_from_slice(&a.unwrap_or(0).to_le_bytes());
    out[16..24].copy_from_slice(&b.to_le_bytes());
    out[24..32].copy_from_slice(&op.process.to_le_bytes());
    out[32..40].copy_from_slice(&op.invoke_ns.to_le_bytes());
    out[40..48].copy_from_slice(&op.complete_ns.to_le_bytes());
    out[48..52].copy_from_slice(&op.invoke_event.to_le_bytes());
    out[52..56].copy_from_slice(&op.invoke_line.to_le_bytes());
    out
}

/// The key and op [`encode`] wrote; an error if the bytes are not a record it could write.
fn decode(bytes: &[u8; RECORD_BYTES]) -> io::Result<(u32, Compact)> {
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let a = (bytes[5] != 0).then_some(u64_at(8) as i64);
    let b = u64_at(16) as i64;
    let corrupt = || io::Error::new(io::ErrorKind::InvalidData, "a spilled op is corrupt");
    let input = match (bytes[4], a) {
        (0, v) => RegisterOp::Read(v),
        (1, Some(v)) => RegisterOp::Write(v),
        (2, expected) => RegisterOp::Cas { expected, new: b },
        (3, v) => RegisterOp::CasFailed(v),
        (4, None) => RegisterOp::Delete,
        _ => return Err(corrupt()),
    };
    let outcome = match bytes[6] {
        0 => Outcome::Ok,
        1 => Outcome::Fail,
        2 => Outcome::Info,
        _ => return Err(corrupt()),
    };
    let op = Compact {
        input,
        outcome,
        process: u64_at(24),
        invoke_ns: u64_at(32),
        complete_ns: u64_at(40),
        invoke_event: u32_at(48),
        invoke_line: u32_at(52),
        f: bytes[7],
    };
    Ok((u32_at(0), op))
}

#[cfg(test)]
mod same_report;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input kind, outcome and extreme value comes back as it went.
    #[test]
    fn records_round_trip() {
        let inputs = [
            RegisterOp::Read(None),
            RegisterOp::Read(Some(-7)),
            RegisterOp::Write(i64::MIN),
            RegisterOp::Cas {
                expected: None,
                new: i64::MAX,
            },
            RegisterOp::Cas {
                expected: Some(0),
                new: -1,
            },
            RegisterOp::CasFailed(None),
            RegisterOp::CasFailed(Some(3)),
            RegisterOp::Delete,
        ];
        for (i, input) in inputs.into_iter().enumerate() {
            for outcome in [Outcome::Ok, Outcome::Fail, Outcome::Info] {
                let op = Compact {
                    input,
                    outcome,
                    process: u64::MAX - i as u64,
                    invoke_ns: 10 + i as u64,
                    complete_ns: u64::MAX,
                    invoke_event: u32::MAX,
                    invoke_line: 7,
                    f: i as u8,
                };
                let (key, back) = decode(&encode(i as u32 * 1000, &op)).unwrap();
                assert_eq!(key, i as u32 * 1000);
                assert_eq!(format!("{back:?}"), format!("{op:?}"));
            }
        }
        let mut bad = encode(
            1,
            &Compact {
                input: RegisterOp::Write(1),
                outcome: Outcome::Ok,
                process: 0,
                invoke_ns: 0,
                complete_ns: 0,
                invoke_event: 0,
                invoke_line: 0,
                f: 0,
            },
        );
        bad[6] = 9;
        assert!(decode(&bad).is_err());
    }

    /// Ops written to the partitions come back per partition in the order written.
    #[test]
    fn partitions_keep_each_keys_order() {
        let mut spill = Spill::new();
        let op = |n: u64| Compact {
            input: RegisterOp::Write(n as i64),
            outcome: Outcome::Ok,
            process: n,
            invoke_ns: n,
            complete_ns: n + 1,
            invoke_event: n as u32,
            invoke_line: n as u32,
            f: 1,
        };
        let keys = [0u32, PARTITIONS as u32, 1, 0, PARTITIONS as u32];
        for (n, &key) in keys.iter().enumerate() {
            spill.write(key, &op(n as u64));
        }
        let mut files = spill.finish().unwrap();
        assert_eq!(files.iter().filter(|f| f.is_some()).count(), 2);
        let mut got = Vec::new();
        read_partition(files[0].take().unwrap(), |key, op| {
            got.push((key, op.process))
        })
        .unwrap();
        let p = PARTITIONS as u32;
        assert_eq!(got, [(0, 0), (p, 1), (0, 3), (p, 4)]);
    }
}
