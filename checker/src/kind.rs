//! The one entry point that dispatches on the [`ModelKind`] a history is checked against: the
//! single-object models (`check`), Elle's analysis (`elle`) and mixed types (`typed`).

use crate::check::{self, bad_initial};
use crate::history::History;
use crate::model::counter::Counter;
use crate::model::kv::Kv;
use crate::model::multi_register::MultiRegister;
use crate::model::ModelKind;
use crate::options::{CheckError, CheckOptions};
use crate::partition::{self, Split};
use crate::report::Report;
use serde_json::Value;

/// Checks `history` against `model`, partition by partition, in parallel; see `partition`.
pub(crate) fn check(
    history: &History,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<Report, CheckError> {
    let budget = opts.budget();
    let name = model.checker();
    match model {
        ModelKind::Register => partition::check(
            history,
            &opts.register()?,
            &budget,
            name,
            Split::ByKeyRequired,
        ),
        ModelKind::CasRegister => {
            partition::check(history, &opts.register()?, &budget, name, Split::ByKeyOrTxn)
        }
        ModelKind::Counter => {
            let initial = match &opts.initial {
                Value::Null => 0,
                v => v.as_i64().ok_or_else(|| {
                    bad_initial(format!("expected an integer, got {}", crate::echo::Echo(v)))
                })?,
            };
            partition::check(history, &Counter { initial }, &budget, name, Split::ByKey)
        }
        ModelKind::Set => crate::elle::check_set(history, opts, name),
        ModelKind::ListAppend => check::list_append(history, opts, name),
        ModelKind::Kv => {
            let initial = match &opts.initial {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                v => {
                    return Err(bad_initial(format!(
                        "expected a string, got {}",
                        crate::echo::Echo(v)
                    )))
                }
            };
            partition::check(history, &Kv { initial }, &budget, name, Split::ByKey)
        }
        ModelKind::MultiRegister => {
            let model = MultiRegister {
                initial: opts.register()?.initial,
            };
            partition::check(history, &model, &budget, name, Split::Whole)
        }
        ModelKind::Txn => {
            refuse_initial(model, opts, "Elle's analyses assume every key starts as the empty list or nil (an initial state is what their inferences start from); check a single-key history with an initial value as --model list-append or --model set")?;
            crate::elle::check(history, opts)
        }
        ModelKind::Types => {
            refuse_initial(
                model,
                opts,
                "each key starts absent and is checked by the type its ops give it",
            )?;
            crate::typed::check(history, &budget)
        }
    }
}

/// Refuses an `initial` option for `model`, which has no use for one (`why`): never ignored.
fn refuse_initial(model: ModelKind, opts: &CheckOptions, why: &str) -> Result<(), CheckError> {
    if opts.initial.is_null() {
        return Ok(());
    }
    Err(bad_initial(format!(
        "model {} takes no initial value ({}): {why}",
        model.name(),
        crate::echo::Echo(&opts.initial)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::h;
    use crate::validity::Validity;

    fn verdict(model: ModelKind, table: &str) -> Validity {
        check(&h(table), model, &CheckOptions::default())
            .unwrap()
            .valid
    }

    #[test]
    fn counter_incr_returns_the_new_value() {
        let ok = "
            0  invoke incr c 1    @10
            1  invoke incr c 2    @11
            0  ok     incr c 3    @20
            1  ok     incr c 2    @21
            0  invoke read c null @30
            0  ok     read c 3    @40
        ";
        assert_eq!(verdict(ModelKind::Counter, ok), Validity::Valid);
        let lost = "
            0  invoke incr c 1    @10
            0  ok     incr c 1    @20
            0  invoke read c null @30
            0  ok     read c 0    @40
        ";
        assert_eq!(verdict(ModelKind::Counter, lost), Validity::Invalid);
    }

    #[test]
    fn set_and_list_append() {
        let set = "
            0  invoke add  s 1     @10
            0  ok     add  s 1     @20
            1  invoke add  s 2     @30
            1  info   add  s 2     @40
            0  invoke read s null  @50
            0  ok     read s [2,1] @60
        ";
        assert_eq!(verdict(ModelKind::Set, set), Validity::Valid);
        let reordered = "
            0  invoke append l 1     @10
            0  ok     append l 1     @20
            0  invoke append l 2     @30
            0  ok     append l 2     @40
            1  invoke read   l null  @50
            1  ok     read   l [2,1] @60
        ";
        assert_eq!(verdict(ModelKind::ListAppend, reordered), Validity::Invalid);
        assert_eq!(
            verdict(ModelKind::Set, &reordered.replace("append", "add")),
            Validity::Valid
        );
    }

    #[test]
    fn the_report_does_not_depend_on_threads() {
        let mut table = String::new();
        for k in 0..8 {
            table.push_str(&format!(
                "{k} invoke write k{k} 1 @{a}\n{k} ok write k{k} 1 @{b}\n{k} invoke read k{k} null @{c}\n{k} ok read k{k} {v} @{d}\n",
                a = 10 * k + 1,
                b = 10 * k + 2,
                c = 10 * k + 3,
                d = 10 * k + 4,
                v = if k % 3 == 0 { 2 } else { 1 },
            ));
        }
        let history = h(&table);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| check(&history, ModelKind::CasRegister, &CheckOptions::default()))
                .unwrap()
        };
        let one = run(1);
        assert_eq!(one.valid, Validity::Invalid);
        assert_eq!(one, run(4));
        assert_eq!(
            one.keys
                .iter()
                .filter(|k| k.valid == Validity::Invalid)
                .count(),
            3
        );
    }

    #[test]
    fn names_parse() {
        for m in ModelKind::ALL {
            assert_eq!(m.name().parse::<ModelKind>(), Ok(m));
        }
        assert_eq!("kv-append".parse::<ModelKind>(), Ok(ModelKind::Kv));
        assert!("x".parse::<ModelKind>().is_err());
        let opts = CheckOptions {
            initial: Value::from("x"),
            ..CheckOptions::default()
        };
        let err = check(&h("0 invoke incr c 1 @1"), ModelKind::Counter, &opts).unwrap_err();
        assert!(
            matches!(
                err,
                CheckError::Option {
                    option: "initial",
                    ..
                }
            ),
            "{err}"
        );
    }
}
