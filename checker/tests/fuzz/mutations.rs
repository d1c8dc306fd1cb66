//! What the two fuzz tests share (`checker/tests/fuzz_parsers.rs` for the library, the root
//! crate's `tests/fuzz_check_cli.rs` for the binary, which includes this file with `#[path]`):
//! the strategy of mutations and the number of cases per run.

use checker::mutate::{Mutation, FIELDS, HUGE_NUMBERS, WRONG_VALUES};
use proptest::prelude::*;

/// Cases per run: `default` in CI; `FUZZ_CASES=N` fuzzes longer.
pub fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A mutation of any kind.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let n = 0usize..4096;
    prop_oneof![
        n.clone().prop_map(Mutation::Truncate),
        (n.clone(), any::<u8>()).prop_map(|(i, m)| Mutation::Flip(i, m)),
        n.clone().prop_map(Mutation::DuplicateLine),
        n.clone().prop_map(Mutation::DropLine),
        n.clone().prop_map(Mutation::SwapLines),
        (n.clone(), 0..HUGE_NUMBERS.len()).prop_map(|(i, m)| Mutation::HugeNumber(i, m)),
        (n, 0..FIELDS.len(), 0..WRONG_VALUES.len())
            .prop_map(|(line, field, value)| { Mutation::WrongType { line, field, value } }),
    ]
}
