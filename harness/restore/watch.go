package restore

import "github.com/pgdrill/pgdrill/harness/cluster"

// Watcher is told when each phase of a restore begins and ends on a shard, with the servers the
// phase works on, so that a drill can attach a fault to a phase ("kill the sidecar during
// replay", "cut the network to the shard during the merge") and know whether it struck while
// the phase ran. It is called from the shards' workers, concurrently, and must not block: a
// fault is injected from the watcher's own goroutine, never from the restore's.
type Watcher interface {
	PhaseBegan(p PhaseStart)
	PhaseEnded(name string, shard int)
}

// PhaseStart is a phase of a restore as it begins.
type PhaseStart struct {
	Name string
	// Shard is the shard's index, or AllShards.
	Shard int
	// Servers are the servers the phase works on: the sidecar it replays into, the source and
	// the live shard it merges between; none when it works on no server of its own.
	Servers []cluster.Server
	// Restorer is the runbook's process, in PhaseRunbook and in the phases its `pgdrill restore`
	// journals; nil in a built-in strategy's phases.
	Restorer *Restorer
}
