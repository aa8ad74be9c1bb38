// Package scenarios is pgdrill's scenario format: a drill written down as data, so that the same
// drill runs every night in CI, in a game day, and on a colleague's laptop.
//
// A scenario file is one YAML document, versioned by apiVersion and kind. It is decoded strictly
// (an unknown or repeated key is an error, and so is a value of the wrong type: YAML's silent
// conversions are refused) and validated before anything starts. Every problem is reported at
// once, each with its file, line, column and field path, e.g.
//
//	my-drill.yaml:14:5: spec.incident.fraction: must be between 0 and 1 (a share), got 1.5
//
// because a scenario that fails one field at a time costs a CI round trip per typo.
//
// Every field but apiVersion, kind, metadata.id, metadata.title, spec.hypothesis and
// spec.incident.kind has a default (defaults.go, applied in one place); an empty section gets the
// defaults of its fields. The built-in scenarios, one per incident kind and named after it, are
// embedded from this directory. The full format, with the defaults:
//
//	apiVersion: pgdrill.dev/v1alpha1
//	kind: Scenario
//	metadata:
//	  id: wrong-id-deletion          # required; lower-case letters, digits, dashes
//	  title: A cleanup job ...       # required
//	  owner: platform-dba
//	  tags: [atlassian-2022]
//	  tier: standard                 # critical | standard | best-effort: the objectives' preset
//	spec:
//	  hypothesis: We expect ...      # required
//	  seed: 1
//	  cluster:
//	    shards: 4                    # 1..64
//	    layout: shared               # shared | schema | database
//	    provider: local              # local | container
//	    durable: false
//	  dataset:
//	    tenants: 200
//	    rows: 1000000                # at least 8 per tenant
//	    distribution: skewed         # skewed | uniform
//	  workload:
//	    writers: 4                   # 0: no workload
//	    rate: 200                    # writes per second, all writers together
//	    mix: {insert: 60, update: 30, delete: 10}
//	  protection:
//	    baseBackup: true
//	    walArchive: true
//	    logicalExportInterval: 0s    # 0s: no logical exports
//	    pgbackrest: false
//	    standbyApplyDelay: 0s        # 0s: no delayed standby
//	  incident:
//	    kind: wrong-id-deletion      # required; see IncidentKinds
//	    after: 5s                    # after the workload starts
//	    fraction: 0.03               # kind-specific parameters: see Incident
//	  detection:
//	    delay: 10s                   # or: probe: {interval: 5s, timeout: 10m}
//	    knowledge: told              # or blind (every built-in scenario): the restore locates the harm from a ticket
//	  restore:
//	    strategy: pitr-sidecar       # or runbook, with runbook: {command: ./restore.sh, timeout: 30m}
//	  faults:                        # default: none
//	    - {kind: kill, target: sidecar, at: restore.replay}
//	  objectives: [rto<=1h, rpo<=5m, completeness>=100%, collateral==0, integrity==ok]
//
// Beyond each field's own range, validation refuses combinations that cannot work: a strategy
// without the protection it restores from, a delayed standby that applies the harm before it is
// detected, incident parameters of another kind, a shard index outside the cluster, a fraction of
// tenants that comes to none, a guard on the last ring, a fault in a phase where it cannot act,
// and objectives that can never pass or never fail.
package scenarios
