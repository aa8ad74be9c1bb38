package scenarios

import (
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/objective"
)

// The defaults, in one place. A field the file leaves out gets its default; a field written with
// a zero value keeps it (and is validated as written), so `baseBackup: false` and `shard: 0`
// mean what they say. Without any optional field, a scenario is the default drill of issue 5:
// 4 shards, 200 tenants, a million rows, a pitr-sidecar restore.
const (
	DefaultShards           = 4
	DefaultTenants          = 200
	DefaultRows             = 1_000_000
	DefaultWriters          = 4
	DefaultRate             = 200 // writes per second over all writers
	DefaultSeed             = 1
	DefaultIncidentAfter    = 5 * time.Second
	DefaultDetectionDelay   = 10 * time.Second
	DefaultProbeInterval    = 5 * time.Second
	DefaultProbeTimeout     = 10 * time.Minute
	DefaultRunbookTimeout   = 30 * time.Minute
	DefaultStrategy         = PITRSidecar
	DefaultTier             = objective.Standard
	DefaultDeletionFraction = 0.03 // "a few % of tenants" (issue 5)
	DefaultRolloutFraction  = 0.1
)

// DefaultMix is the workload's default share of inserts, updates and deletes.
var DefaultMix = Mix{Insert: 60, Update: 30, Delete: 10}

// defaultRings are ring-rollout's rings when the file names none: a canary, a small ring, the
// rest, with guards after the first two.
func defaultRings() []Ring {
	return []Ring{
		{Name: "canary", Fraction: 0.05, Guard: &Guard{MaxRows: 5_000}},
		{Name: "early", Fraction: 0.25, Guard: &Guard{MaxRows: 50_000}},
		{Name: "rest", Fraction: 0.70},
	}
}

// applyDefaults fills in every field the file left out. d says which fields the file set.
func applyDefaults(s *Scenario, d *decoder) {
	def := func(path string, apply func()) {
		if !d.has(path) {
			apply()
		}
	}
	m, sp := &s.Metadata, &s.Spec
	def("metadata.tier", func() { m.Tier = DefaultTier })
	def("spec.seed", func() { sp.Seed = DefaultSeed })

	def("spec.cluster.shards", func() { sp.Cluster.Shards = DefaultShards })
	def("spec.cluster.layout", func() { sp.Cluster.Layout = fixtures.DefaultLayout })
	def("spec.cluster.provider", func() { sp.Cluster.Provider = ProviderLocal })

	def("spec.dataset.tenants", func() { sp.Dataset.Tenants = DefaultTenants })
	def("spec.dataset.rows", func() { sp.Dataset.Rows = DefaultRows })
	def("spec.dataset.distribution", func() { sp.Dataset.Distribution = Skewed })

	def("spec.workload.writers", func() { sp.Workload.Writers = DefaultWriters })
	def("spec.workload.rate", func() { sp.Workload.Rate = DefaultRate })
	def("spec.workload.mix", func() { sp.Workload.Mix = DefaultMix })

	def("spec.protection.baseBackup", func() { sp.Protection.BaseBackup = true })
	def("spec.protection.walArchive", func() { sp.Protection.WALArchive = true })

	in := &sp.Incident
	def("spec.incident.after", func() { in.After = Duration(DefaultIncidentAfter) })
	for _, p := range incidentParams[in.Kind] {
		def("spec.incident."+p, func() {
			switch p {
			case keyFraction:
				in.Fraction = DefaultDeletionFraction
				if in.Kind == RingRollout {
					in.Fraction = DefaultRolloutFraction
				}
			case keyTenants:
				in.Tenants = 1
			case keyTable: // a schema of one's own: the drill picks a real table from its model
				if sp.Dataset.Schema == "" {
					in.Table = fixtures.TableIssues
				}
			case keyColumn: // likewise a real column
				if sp.Dataset.Schema == "" {
					in.Column = "summary"
					if in.Kind == BadMigration {
						in.Column = "description"
					}
				}
			case keyMigration:
				in.Migration = DropColumn
			case keyShard:
				in.Shard = 0
			case keyRings:
				in.Rings = defaultRings()
			}
		})
	}

	if sp.Detection.Probe == nil {
		def("spec.detection.delay", func() { sp.Detection.Delay = Duration(DefaultDetectionDelay) })
	} else {
		def("spec.detection.probe.interval", func() { sp.Detection.Probe.Interval = Duration(DefaultProbeInterval) })
		def("spec.detection.probe.timeout", func() { sp.Detection.Probe.Timeout = Duration(DefaultProbeTimeout) })
	}

	def("spec.restore.strategy", func() { sp.Restore.Strategy = DefaultStrategy })
	if sp.Restore.Runbook != nil {
		def("spec.restore.runbook.timeout", func() { sp.Restore.Runbook.Timeout = Duration(DefaultRunbookTimeout) })
	}

	if m.Tier.Valid() {
		def("spec.objectives", func() {
			preset, _ := objective.Preset(m.Tier) // a valid tier always has a preset
			sp.Objectives = preset.Strings()
		})
	}
}
