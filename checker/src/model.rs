//! Sequential specifications: a [`Model`] says which operations are legal in which state.
//!
//! Models are pure (Porcupine's shape): `init` gives the starting state, `step` either moves to a
//! new state or says the operation is illegal there. The search memoizes on states, so they must
//! be cheap to clone, compare and hash. [`ModelKind`] names the models a history can be checked
//! against (the dispatch on it is in `kind`).

use crate::hash::FxHasher;
use crate::op::Op;
use std::fmt::{self, Debug};
use std::hash::{Hash, Hasher};
use std::str::FromStr;

pub mod counter;
pub mod direct;
pub mod kv;
pub mod list_append;
pub mod multi_register;
pub mod register;
pub mod set;
pub mod zones;

/// A sequential specification to check a history against, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// slotcheck's register (`read`, `write`, `cas`), every op on a named key.
    Register,
    /// A CAS register from another tool; ops without a key form one register.
    CasRegister,
    /// A counter: `incr` (returning the new value) or `add`, and `read`.
    Counter,
    /// A set of integers: `add` and `read` of every member.
    Set,
    /// A list of integers: `append` and `read` of the whole list.
    ListAppend,
    /// Porcupine's string key-value store: `get`, `put`, `append` per key.
    Kv,
    /// Knossos's multi-register: `txn` ops of reads and writes over named registers.
    MultiRegister,
    /// Elle-style anomalies of list-append, set and `txn` histories (see `elle`), plus per-key
    /// linearizability for single-key list-append and set histories.
    Txn,
    /// Mixed data types, each key checked with the model its name says (see `typed`).
    Types,
}

impl ModelKind {
    /// Every model, for help texts.
    pub const ALL: [ModelKind; 9] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Counter,
        ModelKind::Set,
        ModelKind::ListAppend,
        ModelKind::Kv,
        ModelKind::MultiRegister,
        ModelKind::Txn,
        ModelKind::Types,
    ];

    /// The model's name on the command line and in `expected.tsv`.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Counter => "counter",
            ModelKind::Set => "set",
            ModelKind::ListAppend => "list-append",
            ModelKind::Kv => "kv",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Txn => "txn",
            ModelKind::Types => "types",
        }
    }

    /// The name of the check in reports.
    pub(crate) const fn checker(self) -> &'static str {
        match self {
            ModelKind::Register => "register-linearizable",
            ModelKind::CasRegister => "cas-register-linearizable",
            ModelKind::Counter => "counter-linearizable",
            ModelKind::Set => "set-linearizable",
            ModelKind::ListAppend => "list-append-linearizable",
            ModelKind::Kv => "kv-linearizable",
            ModelKind::MultiRegister => "multi-register-linearizable",
            ModelKind::Txn => "elle",
            ModelKind::Types => "types-linearizable",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a model name; `kv-append` (Porcupine's name for its kv model) means `kv`.
impl FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "kv-append" {
            return Ok(ModelKind::Kv);
        }
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ModelKind::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model {s:?}; known: {}", names.join(", "))
            })
    }
}

/// A pure sequential specification that the linearizability search steps through.
pub trait Model {
    /// The object's state between operations; compared and hashed by the search's cache.
    type State: Clone + Eq + Hash + Debug;
    /// One operation as the model sees it (argument and, for completed ops, result).
    type Input: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` applied to `state`, or `None` if `input` is illegal in `state`.
    fn step(&self, state: &Self::State, input: &Self::Input) -> Option<Self::State>;

    /// A cheap, deterministic hash of a state (for the search's cache).
    fn hash_state(&self, state: &Self::State) -> u64 {
        let mut hasher = FxHasher::default();
        state.hash(&mut hasher);
        hasher.finish()
    }

    /// The one state in which `input` is legal, if there is exactly one (a read's value, a cas's
    /// expected value). With [`Model::effect`] this lets the search prune early (see `wgl`).
    fn requires(&self, _input: &Self::Input) -> Option<Self::State> {
        None
    }

    /// What `input` does to the state whenever it is legal. The default, `Other`, is always
    /// correct and turns the search's pruning off.
    fn effect(&self, _input: &Self::Input) -> Effect<Self::State> {
        Effect::Other
    }

    /// Whether `input`, applied to some state, could leave exactly `state`. Must be `true`
    /// whenever that is possible; the search prunes on `false`. The default follows
    /// [`Model::effect`]; models whose ops are [`Effect::Other`] but predictable (an append
    /// leaves a list ending in its value) override it to keep the pruning on.
    fn may_produce(&self, input: &Self::Input, state: &Self::State) -> bool {
        match self.effect(input) {
            Effect::Observes => false,
            Effect::Sets(s) => s == *state,
            Effect::Other => true,
        }
    }

    /// Whether the model's states are ordered by [`Model::precedes`], turning on the search's
    /// reachability pruning. Off by default.
    fn ordered(&self) -> bool {
        false
    }

    /// Whether `to` can follow `from` through ops that do not set the state outright: a partial
    /// order (reflexive, transitive) such that every op whose effect is not [`Effect::Sets`]
    /// moves a state only to states it precedes (an append extends a list: `from` is a prefix of
    /// `to`). Consulted only when [`Model::ordered`]; the search prunes on `false`.
    fn precedes(&self, _from: &Self::State, _to: &Self::State) -> bool {
        true
    }

    /// The state as text, for explanations.
    fn describe_state(&self, state: &Self::State) -> String;

    /// The operation as text, for explanations.
    fn describe_input(&self, input: &Self::Input) -> String;
}

/// What an operation does to the state whenever it is legal, as the search's pruning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<S> {
    /// Leaves the state as it was (a read): the search may linearize it as soon as it is legal.
    Observes,
    /// Leaves exactly this state, whatever it was before (a write, an applied cas).
    Sets(S),
    /// Anything else, or not known.
    Other,
}

/// A model that reads its inputs from a history's ops, so one checking path serves them all.
pub trait OpModel: Model {
    /// The model's view of `op`, or `None` when the op can neither change nor constrain the
    /// state (a `fail` op, a read whose result is unknown).
    fn input(&self, op: &Op) -> Result<Option<Self::Input>, FieldError>;

    /// Drops inputs that provably cannot matter to the verdict, before the search. The default
    /// keeps them all.
    fn prune(&self, _inputs: &mut Vec<(&Op, Self::Input)>) {}

    /// A verdict without search (a fast path such as the register's zones), or `None` to search.
    /// Only `Valid` and `Invalid` may be returned; the caller still searches an invalid partition
    /// for a fuller explanation and keeps this one when the search's budget runs out.
    fn decide(
        &self,
        _ops: &[crate::search::Interval<Self::Input>],
    ) -> Option<crate::search::Search<Self::State>> {
        None
    }

    /// An invalid verdict by a direct argument, cheap enough to try on every partition however
    /// small, before [`OpModel::decide`] and the search; `None` when there is none (the default).
    fn refute(
        &self,
        _ops: &[crate::search::Interval<Self::Input>],
    ) -> Option<crate::search::Search<Self::State>> {
        None
    }

    /// A direct argument, in one sentence, that op `op` of `ops` can take effect in no
    /// linearization (a register read of a value nothing wrote), for the explanation of an
    /// invalid key; `None` when there is none. The default has none.
    fn proof(&self, _ops: &[crate::search::Interval<Self::Input>], _op: usize) -> Option<String> {
        None
    }
}

/// Checks that an `ok` write-like op (`write`, `cas`, `append`, `add`) returned its argument, or
/// `null`: anything else is a malformed completion.
pub(crate) fn check_echo(op: &Op) -> Result<(), FieldError> {
    if op.outcome == crate::op::Outcome::Ok
        && !op.complete_value.is_null()
        && op.complete_value != op.invoke_value
    {
        return Err(FieldError {
            field: "value",
            message: format!(
                "an ok {} returns its argument {}, got {}",
                crate::echo::Echo(&op.f),
                crate::echo::Echo(&op.invoke_value),
                crate::echo::Echo(&op.complete_value)
            ),
            on_completion: true,
        });
    }
    Ok(())
}

/// The input of an op of a collection model (list-append, set): `adds` (an `f` such as `append`)
/// adds the invoked integer, made an input by `add`; `read` observes the integers an `ok` read
/// returned, made an input by `read`. A failed op did not happen, and a read that did not
/// complete `ok` observed nothing: neither is an input. `names` is (model, `adds`, the `f`s it
/// knows), for the error on any other `f`.
pub(crate) fn collection_input<I>(
    op: &Op,
    names: (&str, &str, &str),
    add: impl FnOnce(i64) -> I,
    read: impl FnOnce(Vec<i64>) -> I,
) -> Result<Option<I>, FieldError> {
    let (model, adds, known) = names;
    let input = match op.f.as_str() {
        "read" => match ok_result(op, parse_ints)? {
            Some(seen) => read(seen),
            None => return Ok(None),
        },
        f if f == adds => {
            let v = parse_int(&op.invoke_value).map_err(|m| FieldError::invoke("value", m))?;
            check_echo(op)?;
            add(v)
        }
        other => return Err(unknown_f(model, known, other)),
    };
    Ok((op.outcome != crate::op::Outcome::Fail).then_some(input))
}

/// What an `ok` op returned, read by `parse`; `None` for an op that did not complete `ok`.
pub(crate) fn ok_result<T>(
    op: &Op,
    parse: impl FnOnce(&serde_json::Value) -> Result<T, String>,
) -> Result<Option<T>, FieldError> {
    if op.outcome != crate::op::Outcome::Ok {
        return Ok(None);
    }
    parse(&op.complete_value)
        .map(Some)
        .map_err(|m| FieldError::completion("value", m))
}

/// A field of an op that does not fit the model, so the check stops with an error naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name (`f` or `value`).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
    /// Whether the bad field is on the completion (else on the invocation).
    pub on_completion: bool,
}

impl FieldError {
    /// A bad field on the op's invocation.
    pub fn invoke(field: &'static str, message: String) -> Self {
        FieldError {
            field,
            message,
            on_completion: false,
        }
    }

    /// A bad field on the op's completion.
    pub fn completion(field: &'static str, message: String) -> Self {
        FieldError {
            field,
            message,
            on_completion: true,
        }
    }
}

/// Parses an integer field.
pub(crate) fn parse_int(v: &serde_json::Value) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("expected a 64-bit integer, got {}", crate::echo::Echo(v)))
}

/// Parses an array of integers.
pub(crate) fn parse_ints(v: &serde_json::Value) -> Result<Vec<i64>, String> {
    match v {
        serde_json::Value::Array(items) => items.iter().map(parse_int).collect(),
        other => Err(format!(
            "expected an array of integers, got {}",
            crate::echo::Echo(other)
        )),
    }
}

/// The error for an `f` the model does not know.
pub(crate) fn unknown_f(model: &str, known: &str, f: &str) -> FieldError {
    FieldError::invoke(
        "f",
        format!(
            "the {model} model knows {known}, not {}",
            crate::echo::Echo(format_args!("{:?}", f))
        ),
    )
}
