// Package membership keeps the set of live engine replicas with leases on
// the store port, and assigns a fixed number of partitions to them by
// rendezvous hashing with bounded loads, so that every replica computes
// the same owner for each partition from the same member list, each
// holds an equal share (±1), and a change of membership moves little more
// than the partitions of the replica that left or joined.
//
//	m := membership.New(membership.Config{Maps: store, Replica: "r1"})
//	owned := m.Assign(ctx, 64) // a first set, then a new one on every change
//
// # Leases
//
// Every replica writes a lease into one map of the store (storage.Maps,
// key Config.Key, default "replicas"): field = the replica name, value =
// the lease's deadline in Unix milliseconds and the number of partitions
// the replica consumes ("1796536800000/16"), renewed every
// Config.Interval (default 1 s) to now + Config.TTL (default 4 s). A
// replica is live while its deadline is in the future; a replica that
// stops cleanly deletes its field (its partitions move at once); one that
// dies is dropped by the others when its lease runs out, so its
// partitions are taken over within TTL + Interval. Leases long expired
// (10 × TTL) are deleted by whichever replica sees them (guarded by their
// value, so a renewal in between wins). The map itself expires a day after
// the last renewal. Deadlines are compared with each reader's wall clock:
// the replicas' clocks must agree to well under TTL (NTP).
//
// The store is the one kairos serve uses (Redis for a cluster; with the
// embedded store there is one replica, which owns every partition). While
// the store cannot be reached the last assignment stays in force; the
// first assignment waits for the first successful renewal.
//
// The replicas must agree on the number of partitions (a key's partition
// depends on it). Check, called before a replica joins, refuses a number
// other than the live replicas'; replicas started at the same moment with
// different numbers both pass it, and each then logs an error at every
// change of the disagreeing set. To change the number, stop every
// replica first.
//
// # Assignment
//
// Assignment(members, n) scores every pair (partition p, member) with
// hash(member, p) (rendezvous or highest-random-weight hashing, FNV-1a
// finished with the SplitMix64 mixer) and gives each partition to the
// member of its highest-scoring pair that still has room, every member
// holding ⌊n/m⌋ or ⌈n/m⌉ partitions (bounded loads): stable across
// processes and releases, balanced, and nearly minimal in movement. Plain
// rendezvous hashing moves only the leaver's or joiner's partitions but
// gave 3, 6 and 7 of 16 partitions to three replicas, so the busiest did
// 44 % of the work; with the bound, 16 partitions over 2–6 members move
// 0–2 partitions besides the leaver's or joiner's, 1,024 over 2–6 move 0–22
// (TestAssignmentBalancesAndMovesLittle allows n/8).
//
// Two replicas may briefly disagree (one has seen a change, the other not
// yet): both may then subscribe to a partition. The broker keeps one
// consumer active per partition queue (single-active-consumer), so the
// disagreement only delays the handoff; see signals/rabbitmq.
package membership
