//! The fixture pairs of Elle's list-append and rw-register classes beyond the classic cycles
//! (`internal`, `future-read`, `lost-update`, `dirty-update`, `G-nonadjacent-item` and its
//! variants), each in the shape of Elle's own test, with Elle's verdict and classes.

use super::{assert_valid, cycle, elle, only, summary};
use checker::Validity;
use serde_json::json;

/// The classes of Elle's list-append and rw-register analyses beyond cycles of the classic
/// four, each in the shape of Elle's own test: the bad fixture gets exactly these anomalies
/// (class, keys, lines), which are Elle's anomaly types on it; the ok one is valid.
#[test]
fn elle_classes_in_elle_s_shapes() {
    let x = || vec!["{t}x"];
    for (name, want) in [
        // Elle's FaunaDB case: [append 6, r nil] -> internal, expected [... 6].
        ("internal", vec![("internal", x(), vec![2])]),
        ("future-read", vec![("future-read", x(), vec![4])]),
        // Elle's lost-update-test: [:G2-item :lost-update]; 1 and 2 were never read, so each
        // read of [0] missed the other's append (rw both ways).
        (
            "lost-update",
            vec![
                ("lost-update", x(), vec![4, 5]),
                ("G2-item", x(), vec![4, 5]),
            ],
        ),
        // Elle's dirty update, direct: [:G1a :dirty-update] under its default models.
        (
            "dirty-update",
            vec![("G1a", x(), vec![6, 2]), ("dirty-update", x(), vec![2, 4])],
        ),
        (
            "rw-register-lost-update",
            vec![("lost-update", x(), vec![4, 5])],
        ),
        ("rw-register-internal", vec![("internal", x(), vec![3])]),
    ] {
        assert_valid(&elle(&format!("{name}-ok")));
        let bad = elle(&format!("{name}-bad"));
        assert_eq!(bad.valid, Validity::Invalid, "{bad}");
        let found: Vec<_> = bad.anomalies.iter().map(summary).collect();
        assert_eq!(found, want, "{name}: {bad}");
    }
}

#[test]
fn internal_proof_and_data() {
    let bad = elle("internal-bad");
    let a = only(&bad);
    assert_eq!(a.data["expected"], "[... 6]");
    assert!(
        a.explanation
            .contains("leave it at [... 6].\n  - However, T1's micro-op 2 is `r {t}x []`"),
        "{}",
        a.explanation
    );
}

#[test]
fn dirty_update_proof_and_data() {
    let bad = elle("dirty-update-bad");
    let a = &bad.anomalies[1];
    assert_eq!(a.data["values"], json!([1, 2]));
    assert!(
        a.explanation
            .contains("has [1 2]: T1's append of 1, then, right after it, T2's append of 2"),
        "{}",
        a.explanation
    );
}

/// G-nonadjacent: two or more rw edges, none adjacent (Elle's G-nonadjacent-test and its
/// G-nonadjacent-process case, the latter also with the two ops in different processes).
#[test]
fn g_nonadjacent_item() {
    assert_valid(&elle("G-nonadjacent-item-ok"));
    let bad = elle("G-nonadjacent-item-bad");
    let a = only(&bad);
    let keys = vec!["{t}x", "{t}y"];
    assert_eq!(
        summary(a),
        ("G-nonadjacent-item", keys.clone(), vec![2, 3, 4, 5])
    );
    // T2 and T4 read the key they miss as nil: the empty list.
    assert_eq!(
        cycle(a),
        [
            (2, 3, "wr", "{t}x"),
            (3, 4, "rw", "{t}y"),
            (4, 5, "wr", "{t}y"),
            (5, 2, "rw", "{t}x")
        ]
    );
    for (name, order) in [
        ("G-nonadjacent-item-process", "process"),
        ("G-nonadjacent-item-realtime", "realtime"),
    ] {
        assert_valid(&elle(&format!("{name}-ok")));
        let bad = elle(&format!("{name}-bad"));
        let a = only(&bad);
        assert_eq!(summary(a), (name, keys.clone(), vec![2, 4, 6, 3]), "{bad}");
        assert_eq!(
            cycle(a),
            [
                (2, 4, "rw", "{t}x"),
                (4, 6, order, "-"),
                (6, 3, "rw", "{t}y"),
                (3, 2, "wr", "{t}y")
            ]
        );
    }
}

#[test]
fn lost_update_proof_and_data() {
    let bad = elle("lost-update-bad");
    let a = &bad.anomalies[0];
    assert_eq!(a.data["value"], json!([0]));
    assert!(
        a.explanation
            .contains("T1 and T2 both committed, both read \"{t}x\" = [0] before updating it"),
        "{}",
        a.explanation
    );
    // The G2-item's rw edges go to appends no read saw.
    let steps = bad.anomalies[1].data["cycle"].as_array().unwrap();
    assert!(steps.iter().all(|s| s["unread"] == true), "{bad}");
}
