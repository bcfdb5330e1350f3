//! Rack awareness (KIP-881), shared by `range` and the sticky assignors.
//!
//! A member in rack R *matches* a partition when one of the partition's
//! replicas is in R: it can then fetch from a replica in its own rack
//! (KIP-392) instead of across racks. A member without a rack matches
//! nothing, so it takes what the members with a rack leave.
//!
//! Whether to try matching at all follows the Java client's rule: only
//! when some member has a rack that some partition has a replica in, and
//! not every partition has replicas in the very same racks (then every
//! choice is as good as any other, and the plain algorithm's output is
//! kept).

use std::collections::BTreeSet;

/// Whether a member in `rack` matches a partition with replicas in
/// `replica_racks`.
pub(super) fn matches(rack: Option<&str>, replica_racks: &BTreeSet<String>) -> bool {
    rack.is_some_and(|r| replica_racks.contains(r))
}

/// The Java client's rule for using rack-aware assignment, given the
/// members' racks and the replica racks of every partition to assign.
pub(super) fn worth_matching<'a>(
    member_racks: impl IntoIterator<Item = Option<&'a str>>,
    partition_racks: &[&BTreeSet<String>],
) -> bool {
    let members: BTreeSet<&str> = member_racks.into_iter().flatten().collect();
    if members.is_empty() {
        return false;
    }
    let all: BTreeSet<&str> = partition_racks
        .iter()
        .flat_map(|r| r.iter().map(String::as_str))
        .collect();
    if members.is_disjoint(&all) {
        return false;
    }
    // Each partition's racks are a subset of `all`: equal iff as many.
    partition_racks.iter().any(|r| r.len() != all.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(racks: &[&str]) -> BTreeSet<String> {
        racks.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn matching_is_tried_only_where_it_can_change_something() {
        let ab = set(&["a", "b"]);
        let a = set(&["a"]);
        let none = set(&[]);
        // No member rack.
        assert!(!worth_matching([None, None], &[&a, &ab]));
        // Member racks unknown to every partition.
        assert!(!worth_matching([Some("c")], &[&a, &ab]));
        // Every partition in the same racks.
        assert!(!worth_matching([Some("a"), None], &[&ab, &ab]));
        // Partitions differ: worth it.
        assert!(worth_matching([Some("a"), None], &[&a, &ab]));
        assert!(worth_matching([Some("a")], &[&a, &none]));
    }

    #[test]
    fn a_member_without_a_rack_matches_nothing() {
        assert!(!matches(None, &set(&["a"])));
        assert!(matches(Some("a"), &set(&["a", "b"])));
        assert!(!matches(Some("c"), &set(&["a", "b"])));
    }
}
