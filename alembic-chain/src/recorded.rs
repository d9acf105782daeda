//! Whether a database has nothing to do for an upgrade to a chain's heads,
//! checked straight off what it read (no plan, no state by revision): the
//! version table holds exactly the heads and the ledger records every
//! revision of the graph with the checksums it has now. The packed chain of
//! a service and the graph the command line loads both answer it here, so
//! the two cannot drift apart.

/// A ledger row as the check compares it: the revision, its upgrade
/// checksum and its downgrade checksum.
pub type LedgerEntry<'a> = (&'a str, &'a str, Option<&'a str>);

/// Whether `rows` (the version table's rows, sorted) are `heads` (any
/// order) and `each_check` finds every revision of the graph, given to its
/// callback as a [`LedgerEntry`] in the graph's order (parents first), in
/// `ledger`. The ledger is compared as it comes when it is in the order
/// applied (the usual one: rows after the graph's are of revisions the
/// chain does not have), else looked up by revision. `each_check` answers
/// `false` as soon as its callback does.
pub(crate) fn all_recorded(
    mut heads: Vec<&str>,
    rows: &[String],
    ledger: &[LedgerEntry<'_>],
    each_check: impl Fn(&mut dyn FnMut(LedgerEntry<'_>) -> bool) -> bool,
) -> bool {
    heads.sort_unstable();
    if !heads.into_iter().eq(rows.iter().map(String::as_str)) {
        return false;
    }
    let mut next = ledger.iter();
    if each_check(&mut |entry| next.next() == Some(&entry)) {
        return true;
    }
    let by_id: std::collections::HashMap<&str, (&str, Option<&str>)> =
        ledger.iter().map(|&(r, u, d)| (r, (u, d))).collect();
    each_check(&mut |(id, up, down)| by_id.get(id) == Some(&(up, down)))
}
