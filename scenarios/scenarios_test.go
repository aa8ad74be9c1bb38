package scenarios_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/scenarios"
)

// problemsOf returns the problems of err, which must be a *scenarios.ValidationError.
func problemsOf(err error) []scenarios.Problem {
	GinkgoHelper()
	var ve *scenarios.ValidationError
	Expect(errors.As(err, &ve)).To(BeTrue(), "want *scenarios.ValidationError, got %v", err)
	return ve.Problems
}

// lines returns the problems as FILE:LINE:COL: FIELD: MESSAGE lines.
func lines(err error) []string {
	GinkgoHelper()
	var out []string
	for _, p := range problemsOf(err) {
		out = append(out, p.String())
	}
	return out
}

// minimal is the smallest valid scenario; tests append to it.
const minimal = `apiVersion: pgdrill.dev/v1alpha1
kind: Scenario
metadata: {id: t, title: T}
spec:
  hypothesis: H.
  incident: {kind: wrong-id-deletion}
`

var _ = Describe("built-in scenarios", func() {
	It("has one valid scenario per incident kind, named after it, and chaos scenarios tagged as such", func() {
		var kinds []scenarios.IncidentKind
		for _, s := range scenarios.Builtin() {
			Expect(s.File).To(Equal("scenarios/" + s.Metadata.ID + ".yaml"))
			switch {
			case len(s.Spec.Faults) > 0:
				Expect(s.Metadata.Tags).To(ContainElement("chaos"), s.Metadata.ID)
			case slices.Contains(s.Metadata.Tags, "scale"):
				// An incident at a real incident's size, named after that incident.
				Expect(s.Spec.Dataset.Rows).To(BeNumerically(">=", 10_000_000), s.Metadata.ID)
			default:
				Expect(s.Metadata.ID).To(Equal(string(s.Spec.Incident.Kind)))
				kinds = append(kinds, s.Spec.Incident.Kind)
			}
			Expect(s.Objectives()).NotTo(BeEmpty())
			again, err := scenarios.Load(filepath.Base(s.File)) // the file on disk is the embedded one
			Expect(err).NotTo(HaveOccurred())
			again.File = s.File
			Expect(again).To(Equal(s))
		}
		Expect(kinds).To(ConsistOf(scenarios.IncidentKinds()))
	})

	It("makes wrong-id-deletion the default drill of issue 5, after Atlassian's 2022 outage", func() {
		s, err := scenarios.Lookup("wrong-id-deletion")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Spec.Cluster).To(Equal(scenarios.Cluster{Shards: 4, Layout: fixtures.LayoutShared, Provider: scenarios.ProviderLocal}))
		Expect(s.Spec.Dataset.Tenants).To(Equal(200))
		Expect(s.Spec.Dataset.Rows).To(BeEquivalentTo(1_000_000))
		Expect(s.Spec.Restore.Strategy).To(Equal(scenarios.PITRSidecar))
		Expect(s.Spec.Hypothesis).To(HavePrefix("In April 2022 a script meant to delete legacy app installations was handed site ids and permanently"),
			"a folded block scalar reads as one line of text")
		Expect(s.Spec.Hypothesis).To(ContainSubstring("Atlassian"))
		Expect(s.Objectives().Strings()).To(ContainElement("rto<=15m"))
	})
})

var _ = Describe("decoding and validating", func() {
	It("reports every problem of a malformed file at once, with file, line, column and field", func() {
		_, err := scenarios.Load("testdata/malformed.yaml")
		Expect(lines(err)).To(Equal([]string{
			"testdata/malformed.yaml:3:1: metadata.title: required: the scorecard's headline",
			`testdata/malformed.yaml:4:3: metadata.id: "Wrong_ID" must be 1-63 lower-case letters, digits and dashes, starting and ending with a letter or digit`,
			`testdata/malformed.yaml:6:3: metadata.tier: "critcal" is not one of critical, standard, best-effort (did you mean critical?)`,
			`testdata/malformed.yaml:10:13: spec.cluster.shards: must be a whole number, got the string "four"`,
			`testdata/malformed.yaml:11:5: spec.cluster.layout: "sharded" is not one of shared, schema, database (did you mean shared?)`,
			"testdata/malformed.yaml:15:5: spec.dataset.colour: unknown field; fields here: tenants, rows, distribution, schema, tenantKey, tenantKeys, columns",
			"testdata/malformed.yaml:18:5: spec.incident.fraction: must be between 0 and 1 (a share), got 1.5",
			"testdata/malformed.yaml:19:5: spec.incident.shard: not a parameter of wrong-id-deletion, which takes: fraction",
			"testdata/malformed.yaml:24:7: spec.objectives[1]: completeness>=120% can never pass: completeness cannot exceed 100%",
			`testdata/malformed.yaml:25:7: spec.objectives[2]: unknown metric "rot" (did you mean rto?); metrics: rto, rpo, detect, completeness, collateral, lost_rows, integrity, backups, located, target, phase.{locate,archive,provision,replay,extract,merge,verify}`,
		}))
		p := problemsOf(err)[6]
		Expect(p).To(Equal(scenarios.Problem{File: "testdata/malformed.yaml", Line: 18, Column: 5,
			Field: "spec.incident.fraction", Message: "must be between 0 and 1 (a share), got 1.5"}))
	})

	It("refuses combinations that cannot work", func() {
		_, err := scenarios.Load("testdata/incompatible.yaml")
		Expect(lines(err)).To(Equal([]string{
			"testdata/incompatible.yaml:9:26: spec.dataset.rows: must be at least 80 (8 per tenant for 10 tenants), got 50",
			"testdata/incompatible.yaml:11:5: spec.workload.mix: insert, update and delete are percentages and must add up to 100, got 90",
			"testdata/incompatible.yaml:13:5: spec.protection.standbyApplyDelay: the standby applies the incident after 1m0s, but it may go undetected for 5m0s: the standby would hold the harm too; make the delay longer than the detection",
			"testdata/incompatible.yaml:16:5: spec.incident.shard: must be a shard index between 0 and 1 (the cluster has 2 shards), got 2",
			"testdata/incompatible.yaml:17:5: spec.incident.fraction: not a parameter of shard-loss, which takes: shard",
			"testdata/incompatible.yaml:21:5: spec.restore.strategy: delayed-standby cannot restore shard-loss: use one of full-shard-pitr, runbook",
			"testdata/incompatible.yaml:22:5: spec.restore.runbook: only used with strategy runbook, not delayed-standby",
			"testdata/incompatible.yaml:24:20: spec.faults[0].target: a sidecar runs during restore.replay and restore.merge only: attach the fault to one of them",
			"testdata/incompatible.yaml:25:7: spec.faults[1].at: required (or during): when the fault strikes, one of fill, protect, baseline, workload, incident, detect, backups, restore, restore.archive, restore.provision, restore.replay, restore.merge, restore.undo, restore.pause, restore.swap, restore.runbook, with an optional + DURATION",
			"testdata/incompatible.yaml:26:3: spec.objectives: empty: a drill needs at least one objective; remove the key to use the tier's preset",
		}))
	})

	It("checks a ring rollout's rings together", func() {
		_, err := scenarios.Load("testdata/rings.yaml")
		Expect(lines(err)).To(Equal([]string{
			"testdata/rings.yaml:9:5: spec.incident.rings: the rings' fractions are shares of the targeted tenants and must add up to 1, got 0.9",
			"testdata/rings.yaml:10:47: spec.incident.rings[0].guard.maxRows: must be at least 1, got 0",
			`testdata/rings.yaml:11:10: spec.incident.rings[1].name: "canary" is also rings[0]`,
			"testdata/rings.yaml:12:37: spec.incident.rings[2].guard: the last ring's guard never runs: nothing is left to halt",
		}))
	})

	It("reports a YAML syntax error with its position", func() {
		_, err := scenarios.Load("testdata/syntax.yaml")
		Expect(lines(err)).To(Equal([]string{"testdata/syntax.yaml:4:9: invalid YAML: sequence end token ']' not found"}))
	})

	DescribeTable("refuses what YAML would convert or ignore silently",
		func(extra, want string) {
			_, err := scenarios.Parse("x.yaml", []byte(minimal+extra))
			Expect(lines(err)).To(ConsistOf(want))
		},
		Entry("a repeated key", "  seed: 1\n  seed: 2\n", "x.yaml:8:3: spec.seed: given twice (first on line 7); keep one"),
		Entry("a negative seed", "  seed: -1\n", "x.yaml:7:9: spec.seed: must not be negative, got -1"),
		Entry("a fractional count", "  dataset: {tenants: 2.5}\n", "x.yaml:7:22: spec.dataset.tenants: must be a whole number, got the number 2.5"),
		Entry("a number for a string", "  restore: {strategy: runbook, runbook: {command: 42}}\n", "x.yaml:7:51: spec.restore.runbook.command: must be a string, got the number 42 (quote it if it is meant as text)"),
		Entry("a string for a boolean", "  cluster: {durable: yes}\n", `x.yaml:7:22: spec.cluster.durable: must be true or false, got the string "yes"`),
		Entry("a duration without unit", "  detection: {delay: 30}\n", "x.yaml:7:22: spec.detection.delay: a duration needs a unit: write e.g. 30s"),
		Entry("a bad duration", "  detection: {delay: soon}\n", `x.yaml:7:22: spec.detection.delay: must be a duration like 500ms, 30s, 15m or 1h30m, got the string "soon"`),
		Entry("a mapping for a list", "  faults: {kind: kill-shard}\n", "x.yaml:7:11: spec.faults: must be a list, got a mapping"),
		Entry("a scalar for a section", "  cluster: big\n", `x.yaml:7:12: spec.cluster: must be a mapping of fields, got the string "big"`),
		Entry("a key without value", "  seed:\n", "x.yaml:7:9: spec.seed: has no value; give one or remove the key"),
		Entry("an anchor", "  seed: &s 1\n", "x.yaml:7:9: spec.seed: anchors, aliases, tags and merge keys are not supported in scenario files; write the value out"),
		Entry("a misspelt key", "  worklaod: {}\n", "x.yaml:7:3: spec.worklaod: unknown field (did you mean workload?); fields here: hypothesis, seed, cluster, dataset, workload, protection, incident, detection, restore, faults, objectives, projection"),
		Entry("a second document", "---\nkind: Scenario\n", "x.yaml:7:1: 2 YAML documents; a scenario file holds exactly one"),
	)

	It("reports missing required fields at the section that lacks them", func() {
		_, err := scenarios.Parse("x.yaml", []byte("metadata: {}\nspec:\n  incident: {}\n"))
		Expect(lines(err)).To(Equal([]string{
			"x.yaml:1:1: apiVersion: must be pgdrill.dev/v1alpha1",
			"x.yaml:1:1: kind: must be Scenario",
			"x.yaml:1:1: metadata.id: required: lower-case letters, digits and dashes, e.g. wrong-id-deletion",
			"x.yaml:1:1: metadata.title: required: the scorecard's headline",
			`x.yaml:2:1: spec.hypothesis: required: say what you expect the drill to show, e.g. "we bring the deleted tenants back within 15 minutes without harming anyone else"`,
			"x.yaml:3:3: spec.incident.kind: required: one of wrong-id-deletion, wrong-id-soft-delete, purge-not-soft-delete, update-without-where, bad-migration, shard-loss, ring-rollout",
		}))
		_, err = scenarios.Parse("x.yaml", []byte("apiVersion: pgdrill.dev/v2\n"))
		Expect(lines(err)).To(ContainElement(`x.yaml:1:1: apiVersion: "pgdrill.dev/v2" is not a version this pgdrill reads; must be pgdrill.dev/v1alpha1`))
		_, err = scenarios.Parse("x.yaml", []byte("# nothing\n"))
		Expect(lines(err)).To(Equal([]string{"x.yaml:1: empty file; a scenario starts with apiVersion: pgdrill.dev/v1alpha1"}))
	})

	DescribeTable("refuses impossible incident parameters",
		func(incident, want string) {
			src := strings.Replace(minimal, "  incident: {kind: wrong-id-deletion}\n", "  incident: "+incident+"\n", 1)
			_, err := scenarios.Parse("x.yaml", []byte(src))
			Expect(lines(err)).To(ConsistOf(ContainSubstring(want)))
		},
		Entry("a fraction of no tenant", "{kind: wrong-id-deletion, fraction: 0.001}", "0.001 of 200 tenants is 0.2 tenants, fewer than one; raise it to at least 0.005"),
		Entry("an unknown kind", "{kind: wrong-ids}", `"wrong-ids" is not one of`),
		Entry("more tenants than exist", "{kind: update-without-where, tenants: 201}", "must be between 1 and the dataset's 200 tenants, got 201"),
		Entry("an unknown table", "{kind: bad-migration, table: issue}", `"issue" is not one of sites, users, app_installations, projects, issues, comments, attachments (did you mean issues?)`),
		Entry("an unknown column", "{kind: bad-migration, column: sumary}", `table issues has no column "sumary" (did you mean summary?)`),
		Entry("a key column", "{kind: update-without-where, table: users, column: tenant_id}", "tenant_id is part of users's primary key; pick a data column"),
		Entry("an unknown migration", "{kind: bad-migration, migration: truncate}", `"truncate" is not one of drop-column, rewrite-column`),
		Entry("a negative wait", "{kind: wrong-id-deletion, after: -1s}", "spec.incident.after: must not be negative, got -1s"),
		Entry("a unit slip", "{kind: wrong-id-deletion, after: 2400h}", "must be at most 24h0m0s, got 2400h0m0s"),
		Entry("one ring", "{kind: ring-rollout, rings: [{name: all, fraction: 1}]}", "a rollout needs at least 2 rings, got 1"),
	)

	It("accepts every fault it injects, and names every one it cannot", func() {
		faults := `  faults:
    - {kind: kill, target: sidecar, at: restore.replay}
    - {kind: pause, target: catalog, during: restore.merge}
    - {kind: restart, target: shard-1, at: workload + 1s}
    - {kind: latency, at: restore.merge, latency: 50ms, jitter: 10ms, for: 2s}
    - {kind: bandwidth, target: sidecar, during: restore.merge, rate: 500}
    - {kind: reset, at: restore, after: 1s}
    - {kind: cut, target: shard, at: restore.merge, for: 2s}
    - {kind: stall, target: catalog, at: detect, for: 1s}
    - {kind: wal-missing, at: detect}
    - {kind: wal-corrupt, at: detect, segment: "000000010000000000000003"}
    - {kind: backup-corrupt, at: detect}
    - {kind: backup-truncate, at: detect, file: base/5/16384}
`
		sc, err := scenarios.Parse("x.yaml", []byte(minimal+faults))
		Expect(err).NotTo(HaveOccurred())
		Expect(sc.Spec.Faults).To(HaveLen(12))
		Expect(sc.Spec.Faults[2].Trigger()).To(Equal(scenarios.Trigger{Phase: "workload", Offset: time.Second}))
		Expect(sc.Spec.Faults[0].TargetOrDefault()).To(Equal("sidecar"))
		Expect(sc.Spec.Faults[5].TargetOrDefault()).To(Equal("shard"))
		sc, err = scenarios.Parse("x.yaml", []byte(minimal+"  faults: [{kind: disk-full, target: sidecar, at: restore.replay, for: 2s}]\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(sc.HasFault(scenarios.FaultDiskFull)).To(BeTrue())
		sc, err = scenarios.Parse("x.yaml", []byte(minimal+"  restore: {strategy: runbook, runbook: {command: ./restore.sh}}\n"+
			"  faults: [{kind: restorer-crash, at: restore.merge, tenants: 2}]\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(sc.Spec.Faults[0].TargetOrDefault()).To(Equal("runbook"))
		Expect(sc.Spec.Faults[0].Tenants).To(Equal(2))
	})

	It("refuses what is not implemented yet rather than running without it", func() {
		_, err := scenarios.Parse("x.yaml", []byte(minimal+"  dataset: {distribution: uniform}\n"))
		Expect(lines(err)).To(ConsistOf(ContainSubstring("spec.dataset.distribution: uniform sizes are not implemented yet")))
	})

	It("takes the container provider, and refuses a provider it does not know", func() {
		sc, err := scenarios.Parse("x.yaml", []byte(minimal+"  cluster: {provider: container}\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(sc.Spec.Cluster.Provider).To(Equal(scenarios.ProviderContainer))
		_, err = scenarios.Parse("x.yaml", []byte(minimal+"  cluster: {provider: kubernetes}\n"))
		Expect(lines(err)).To(ConsistOf(ContainSubstring("spec.cluster.provider")))
	})

	It("refuses a strategy that cannot restore the incident, also when chosen instead of the file's", func() {
		_, err := scenarios.Parse("x.yaml", []byte(strings.Replace(minimal, "{kind: wrong-id-deletion}", "{kind: shard-loss}", 1)))
		Expect(lines(err)).To(ConsistOf(ContainSubstring("pitr-sidecar cannot restore shard-loss: use one of full-shard-pitr, runbook")))
		sc, err := scenarios.Lookup("wrong-id-deletion")
		Expect(err).NotTo(HaveOccurred())
		_, _, err = scenarios.WithStrategy(sc, scenarios.Restore{Strategy: scenarios.SoftDeleteUndo})
		Expect(err).To(MatchError(ContainSubstring("soft-delete-undo cannot restore wrong-id-deletion: use one of")))
		_, _, err = scenarios.WithStrategy(sc, scenarios.Restore{Strategy: "pitr-sidcar"})
		Expect(err).To(MatchError(ContainSubstring(`did you mean pitr-sidecar?`)))
		_, _, err = scenarios.WithStrategy(sc, scenarios.Restore{Strategy: scenarios.RunbookStrategy})
		Expect(err).To(MatchError(ContainSubstring("a runbook command goes with strategy runbook only")))
		full, notes, err := scenarios.WithStrategy(sc, scenarios.Restore{Strategy: scenarios.FullShardPITR})
		Expect(err).NotTo(HaveOccurred(), "allowed: its collateral is what the drill shows")
		Expect(notes).To(BeEmpty())
		Expect(full.Spec.Restore.Strategy).To(Equal(scenarios.FullShardPITR))
		Expect(sc.Spec.Restore.Strategy).To(Equal(scenarios.PITRSidecar), "the scenario given is left as it was")
	})

	It("equips a scenario chosen with another strategy with the protection that strategy restores from, and says so", func() {
		sc, err := scenarios.Lookup("wrong-id-deletion")
		Expect(err).NotTo(HaveOccurred())
		Expect(sc.Spec.Protection.StandbyApplyDelay).To(BeZero())
		standby, notes, err := scenarios.WithStrategy(sc, scenarios.Restore{Strategy: scenarios.DelayedStandby})
		Expect(err).NotTo(HaveOccurred())
		Expect(standby.Spec.Protection.StandbyApplyDelay.Std()).To(BeNumerically(">", 2*time.Minute),
			"longer than the scenario's detection, with room")
		Expect(notes).To(ConsistOf(ContainSubstring("standbyApplyDelay set to")))
		Expect(sc.Spec.Protection.StandbyApplyDelay).To(BeZero(), "the scenario given is left as it was")

		export, notes, err := scenarios.WithStrategy(sc, scenarios.Restore{Strategy: scenarios.LogicalExport})
		Expect(err).NotTo(HaveOccurred())
		Expect(export.Spec.Protection.LogicalExportInterval.Std()).To(Equal(scenarios.DefaultExportInterval))
		Expect(notes).To(ConsistOf(ContainSubstring("logicalExportInterval set to 5s")))

		_, notes, err = scenarios.WithStrategy(sc, scenarios.Restore{Strategy: scenarios.PITRSidecar})
		Expect(err).NotTo(HaveOccurred())
		Expect(notes).To(BeEmpty(), "nothing to equip: the scenario already protects for it")
	})

	It("has one registry of strategies, which the README's table is written from", func() {
		readme, err := os.ReadFile("../README.md")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(readme)).To(ContainSubstring(scenarios.StrategyTable()),
			"README.md's strategy table differs from the registry: paste `pgdrill scenarios strategies --markdown` into it")
		var names []scenarios.Strategy
		for _, s := range scenarios.StrategyInfos() {
			names = append(names, s.Name)
			Expect(s.Incidents).NotTo(BeEmpty(), "%s restores some incident", s.Name)
			Expect(s.Layouts).NotTo(BeEmpty(), "%s restores some layout", s.Name)
			Expect(s.Source).NotTo(BeEmpty())
			Expect(s.ChooseWhen).NotTo(BeEmpty())
		}
		Expect(names).To(Equal(scenarios.Strategies()))
		Expect(names[0]).To(Equal(scenarios.DefaultStrategy))
		for _, kind := range scenarios.IncidentKinds() {
			Expect(scenarios.StrategiesWhere(func(s scenarios.StrategyInfo) bool {
				return s.Name != scenarios.RunbookStrategy && slices.Contains(s.Incidents, kind)
			})).NotTo(BeEmpty(), "some built-in strategy restores %s", kind)
		}
	})

	DescribeTable("refuses a strategy without the protection it restores from",
		func(spec, want string) {
			_, err := scenarios.Parse("x.yaml", []byte(minimal+spec))
			Expect(lines(err)).To(ConsistOf(ContainSubstring(want)))
		},
		Entry(nil, "  protection: {walArchive: false}\n", "pitr-sidecar needs spec.protection.baseBackup and walArchive"),
		Entry(nil, "  restore: {strategy: delayed-standby}\n", "delayed-standby needs spec.protection.standbyApplyDelay"),
		Entry(nil, "  restore: {strategy: logical-export}\n", "logical-export needs spec.protection.logicalExportInterval"),
		Entry(nil, "  restore: {strategy: pgbackrest-sidecar}\n", "pgbackrest-sidecar needs spec.protection.pgbackrest: true"),
		Entry(nil, "  restore: {strategy: runbook}\n", "spec.restore.runbook.command: required with strategy runbook"),
		Entry(nil, "  restore: {strategy: pitr}\n", `"pitr" is not one of pitr-sidecar`),
		Entry(nil, "  protection: {baseBackup: false, logicalExportInterval: 1m}\n  restore: {strategy: logical-export}\n"+
			"  faults: [{kind: backup-corrupt, at: restore}]\n", "backup-corrupt breaks the base backup chain, but spec.protection.baseBackup is off"),
		Entry(nil, "  faults: [{kind: pause, at: provision}]\n", `spec.faults[0].at: phase "provision" is not one of fill, protect`),
		Entry(nil, "  faults: [{kind: pause, at: verify}]\n", `spec.faults[0].at: phase "verify" is not one of fill`),
		Entry(nil, "  faults: [{kind: oom, at: restore}]\n", `spec.faults[0].kind: "oom" is not one of kill, pause`),
		Entry(nil, "  faults: [{kind: pause, at: restore + soon}]\n", `spec.faults[0].at: "soon" after the phase is not a duration like 2s`),
		Entry(nil, "  faults: [{kind: pause, at: restore, during: restore}]\n", "spec.faults[0].during: at and during are exclusive"),
		Entry(nil, "  faults: [{kind: pause, target: shard-9, at: restore}]\n", "spec.faults[0].target: shard-9: the cluster has 4 shard(s)"),
		Entry(nil, "  faults: [{kind: pause, target: node-1, at: restore}]\n", `spec.faults[0].target: "node-1" is not a target`),
		Entry(nil, "  faults: [{kind: wal-missing, target: catalog, at: restore}]\n", "spec.faults[0].target: wal-missing cannot break catalog: it breaks shard"),
		Entry(nil, "  faults: [{kind: pause, at: restore, latency: 1s}]\n", "spec.faults[0].latency: pause has no latency"),
		Entry(nil, "  faults: [{kind: kill, target: shard-1, at: restore}]\n", "kill crashes shard-1, whose throwaway settings (fsync and synchronous_commit off) lose acknowledged commits in a crash: set spec.cluster.durable: true"),
		Entry(nil, "  faults: [{kind: restorer-crash, at: restore.merge}]\n", "spec.faults[0].kind: restorer-crash crashes the runbook, but spec.restore.strategy is pitr-sidecar: use strategy runbook"),
		Entry(nil, "  restore: {strategy: runbook, runbook: {command: x}}\n  faults: [{kind: restorer-crash, during: restore.merge}]\n",
			"spec.faults[0].during: restorer-crash strikes once and is healed when the runbook runs again"),
		Entry(nil, "  restore: {strategy: runbook, runbook: {command: x}}\n  faults: [{kind: restorer-crash, at: incident}]\n",
			"spec.faults[0].at: restorer-crash strikes while the runbook restores"),
		Entry(nil, "  faults: [{kind: kill, target: sidecar, at: restore.replay, tenants: 3}]\n", "spec.faults[0].tenants: kill has no tenants"),
		Entry(nil, "  faults: [{kind: disk-full, at: restore.replay}]\n", "spec.faults[0].target: disk-full cannot break shard: it breaks sidecar"),
		Entry(nil, "  protection: {standbyApplyDelay: 1m}\n  restore: {strategy: delayed-standby}\n  faults: [{kind: disk-full, target: sidecar, at: restore.replay}]\n",
			"spec.faults[0].kind: disk-full fills the disk of the sidecar pitr-sidecar recovers; spec.restore.strategy is delayed-standby"),
		Entry(nil, "  detection: {delay: 1s, probe: {}}\n", "spec.detection.delay: give a delay or a probe, not both"),
		Entry(nil, "  detection: {probe: {interval: 1m, timeout: 30s}}\n", "30s is shorter than the interval 1m0s: the probe would never run"),
		Entry(nil, "  workload: {writers: 65}\n", "must be between 0 (no workload) and 64, got 65"),
		Entry(nil, "  workload: {rate: 0}\n", "must be between 1 and 100000 writes per second, got 0"),
		Entry(nil, "  workload: {mix: {insert: 110, update: -10}}\n", "spec.workload.mix.update: must not be negative, got -10"),
		Entry(nil, "  cluster: {shards: 0}\n", "spec.cluster.shards: must be between 1 and 64, got 0"),
		Entry(nil, "  dataset: {rows: 2000000000}\n", "must be at most 1000000000"),
		Entry(nil, "  dataset: {distribution: zipf}\n", `"zipf" is not one of skewed, uniform`),
		Entry(nil, "  cluster: {provider: docker}\n", `"docker" is not one of local, container`),
	)
})

var _ = Describe("defaults", func() {
	It("fills in every field a file leaves out, from one place", func() {
		s, err := scenarios.Parse("x.yaml", []byte(minimal))
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Metadata.Tier).To(Equal(objective.Standard))
		sp := s.Spec
		Expect(sp.Seed).To(BeEquivalentTo(scenarios.DefaultSeed))
		Expect(sp.Cluster).To(Equal(scenarios.Cluster{Shards: 4, Layout: fixtures.LayoutShared, Provider: scenarios.ProviderLocal}))
		Expect(sp.Dataset).To(Equal(scenarios.Dataset{Tenants: 200, Rows: 1_000_000, Distribution: scenarios.Skewed}))
		Expect(sp.Workload).To(Equal(scenarios.Workload{Writers: 4, Rate: 200, Mix: scenarios.DefaultMix}))
		Expect(sp.Protection).To(Equal(scenarios.Protection{BaseBackup: true, WALArchive: true}))
		Expect(sp.Incident).To(Equal(scenarios.Incident{Kind: scenarios.WrongIDDeletion,
			After: scenarios.Duration(scenarios.DefaultIncidentAfter), Fraction: 0.03}))
		Expect(sp.Detection).To(Equal(scenarios.Detection{Delay: scenarios.Duration(scenarios.DefaultDetectionDelay)}))
		Expect(sp.Restore).To(Equal(scenarios.Restore{Strategy: scenarios.PITRSidecar}))
		Expect(sp.Faults).To(BeEmpty())
		preset, err := objective.Preset(objective.Standard)
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Objectives()).To(Equal(preset))
		Expect(sp.Objectives).To(Equal(preset.Strings()))
	})

	It("keeps a zero written on purpose", func() {
		s, err := scenarios.Parse("x.yaml", []byte(strings.Replace(minimal, "{kind: wrong-id-deletion}",
			"{kind: wrong-id-deletion, after: 0}", 1)+"  protection: {walArchive: false}\n  restore: {strategy: logical-export}\n"+
			"  workload: {writers: 0}\n  protection2: x\n"))
		Expect(lines(err)).To(ConsistOf(
			ContainSubstring("protection2: unknown field"),
			ContainSubstring("logical-export needs spec.protection.logicalExportInterval"),
		))
		s, err = scenarios.Parse("x.yaml", []byte(strings.Replace(minimal, "{kind: wrong-id-deletion}",
			"{kind: wrong-id-deletion, after: 0}", 1)+"  protection: {walArchive: false, logicalExportInterval: 1m}\n"+
			"  restore: {strategy: logical-export}\n  workload: {writers: 0}\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Spec.Incident.After).To(BeZero())
		Expect(s.Spec.Protection.WALArchive).To(BeFalse())
		Expect(s.Spec.Protection.BaseBackup).To(BeTrue())
		Expect(s.Spec.Workload.Writers).To(BeZero())
	})

	It("defaults a probe's and a runbook's settings, and keeps objectives as written", func() {
		s, err := scenarios.Load("testdata/valid-runbook.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Spec.Restore.Runbook).To(Equal(&scenarios.Runbook{Command: "./restore.sh --all",
			Timeout: scenarios.Duration(scenarios.DefaultRunbookTimeout)}))
		Expect(s.Objectives().Strings()).To(Equal([]string{"rto<=1h", "lost_rows==0"}))

		s, err = scenarios.Parse("x.yaml", []byte(minimal+"  detection: {probe: {}}\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Spec.Detection).To(Equal(scenarios.Detection{Probe: &scenarios.Probe{
			Interval: scenarios.Duration(5 * time.Second), Timeout: scenarios.Duration(10 * time.Minute)}}))
	})
})

var _ = Describe("finding scenarios", func() {
	It("looks up a built-in by id, else a file by path", func() {
		s, err := scenarios.Lookup("shard-loss")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.File).To(Equal("scenarios/shard-loss.yaml"))
		s, err = scenarios.Lookup("testdata/valid-runbook.yaml")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Metadata.ID).To(Equal("our-runbook"))
		_, err = scenarios.Lookup("testdata/malformed.yaml")
		Expect(problemsOf(err)).NotTo(BeEmpty())
	})

	It("says what it could not find, with a hint", func() {
		_, err := scenarios.Lookup("shard-los")
		Expect(err).To(MatchError(scenarios.ErrNotFound))
		Expect(err).To(MatchError(ContainSubstring("(did you mean shard-loss?)")))
		_, err = scenarios.Load(filepath.Join(GinkgoT().TempDir(), "none.yaml"))
		Expect(err).To(MatchError(os.ErrNotExist))
	})
})

var _ = Describe("showing scenarios", func() {
	It("writes an incident with its kind's parameters only, zeros included", func() {
		s, err := scenarios.Lookup("shard-loss")
		Expect(err).NotTo(HaveOccurred())
		s.Spec.Incident.Shard = 0
		b, err := yaml.Marshal(s.Spec.Incident)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(Equal("kind: shard-loss\nafter: 5s\nshard: 0\n"))
		j, err := json.Marshal(s.Spec.Incident)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(j)).To(Equal(`{"kind":"shard-loss","after":"5s","shard":0}`))
	})

	It("writes what `pgdrill scenarios show` prints, every default spelled out", func() {
		s, err := scenarios.Lookup("shard-loss")
		Expect(err).NotTo(HaveOccurred())
		b, err := yaml.Marshal(s)
		Expect(err).NotTo(HaveOccurred())
		golden, err := os.ReadFile("testdata/shard-loss.show.golden")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(Equal(string(golden)))
	})

	It("writes a scenario that reads back as the same scenario", func() {
		for _, s := range scenarios.Builtin() {
			b, err := yaml.Marshal(s)
			Expect(err).NotTo(HaveOccurred())
			again, err := scenarios.Parse(s.File, b)
			Expect(err).NotTo(HaveOccurred(), string(b))
			Expect(again).To(Equal(s))
		}
	})
})
