package drill_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

// chaosScenario is a small wrong-id deletion restored by restore, with faults (YAML list items).
func chaosScenario(restore, protection string, faults ...string) *scenarios.Scenario {
	GinkgoHelper()
	list := ""
	for _, f := range faults {
		list += "    - " + f + "\n"
	}
	sc, err := scenarios.Parse("chaos.yaml", []byte(fmt.Sprintf(`apiVersion: pgdrill.dev/v1alpha1
kind: Scenario
metadata: {id: chaos, title: A small drill under fire}
spec:
  hypothesis: The restore survives the faults and brings every tenant back.
  seed: 7
  cluster: {shards: 2, durable: true}
  dataset: {tenants: 16, rows: 8000}
  workload: {rate: 200}
  protection: {%s}
  incident: {kind: wrong-id-deletion, after: 300ms, fraction: 0.25}
  detection: {delay: 200ms}
  restore: %s
  faults:
%s  objectives: [rto<=2m, completeness>=100%%, collateral==0, integrity==ok]
`, protection, restore, list)))
	Expect(err).NotTo(HaveOccurred())
	return sc
}

// expectStruckAndHealed asserts every fault of out was seen to take effect and to heal, and is a
// band on the report's timeline.
func expectStruckAndHealed(out *drill.Outcome) {
	GinkgoHelper()
	Expect(out.Faults).NotTo(BeEmpty())
	rep := drill.Report(out)
	for _, f := range out.Faults {
		Expect(f.Confirmed).To(BeTrue(), "%s: %s", f.Description, f.Problem)
		Expect(f.Healed).To(BeTrue(), "%s: %s", f.Description, f.Problem)
		Expect(f.HealedAt).To(BeNumerically(">=", f.Injected))
		Expect(rep.Timeline).To(ContainElement(And(HaveField("Kind", reports.KindFault), HaveField("Name", "fault: "+f.Description))))
	}
	Expect(rep.Faults).To(HaveLen(len(out.Faults)))
}

// expectNoRecordsOf asserts that nothing of run runID is left recorded: its own record, and those
// of the restores attached to it (RUN_ID-xxxx).
func expectNoRecordsOf(runID string) {
	GinkgoHelper()
	recs, err := provider.Store().List()
	Expect(err).NotTo(HaveOccurred())
	for _, rec := range recs {
		Expect(rec.RunID).NotTo(HavePrefix(runID), "what a crashed restore left is reaped")
	}
}

// expectNoMounts asserts that no filesystem pgdrill mounted (a sidecar's disk) is left.
func expectNoMounts() {
	GinkgoHelper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	Expect(string(mounts)).NotTo(ContainSubstring("/sidecar-shard-"), "no sidecar's disk is left mounted")
}

// retriedIn lists the phases a restore retried a step of.
func retriedIn(out *drill.Outcome) []string {
	var phases []string
	for _, r := range out.Restore.Retries {
		phases = append(phases, r.Phase)
	}
	return phases
}

var _ = Describe("faults in a drill", Label(drilltest.Slow), func() {
	It("kills the sidecar during replay and cuts the network to the shard during the merge: the restore retries, and passes", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "",
			"{kind: kill, target: sidecar, at: restore.replay}", "{kind: cut, target: shard, at: restore.merge, for: 2s}"))
		expectPassed(out)
		expectStruckAndHealed(out)
		By("retrying the replay of a dead sidecar and the merge of a tenant whose connection was cut")
		Expect(retriedIn(out)).To(ContainElements(restore.PhaseReplay, restore.PhaseMerge))
		Expect(out.Measures).To(HaveKey(objective.RTO))
		Expect(out.Measures[objective.RTO].Number).To(BeNumerically(">", 2), "the 2 s cut is in the RTO")
	})

	It("cuts the network to the sidecar during the merge: the tenant is merged again once it is back", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "", "{kind: cut, target: sidecar, at: restore.merge, for: 1s}"))
		expectPassed(out)
		expectStruckAndHealed(out)
		Expect(retriedIn(out)).To(ContainElement(restore.PhaseMerge))
	})

	It("sees a fault on the sidecar healed as its phase ends, though the restore stops the sidecar then", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "", "{kind: bandwidth, target: sidecar, during: restore.merge, rate: 1000}"))
		expectPassed(out)
		expectStruckAndHealed(out)
	})

	It("kills the live shard during the merge and starts it again: the merge waits it out", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "", "{kind: kill, target: shard, at: restore.merge, for: 1s}"))
		Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason)
		expectStruckAndHealed(out)
		Expect(retriedIn(out)).To(ContainElement(restore.PhaseMerge))
	})

	It("slows the network to every shard during the restore with latency, and still passes", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "",
			"{kind: latency, target: shard-0, during: restore, latency: 20ms}", "{kind: latency, target: shard-1, during: restore, latency: 20ms}"))
		expectPassed(out)
		expectStruckAndHealed(out)
	})

	It("never turns a restore that brought nothing back into a PASS, whatever the faults", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: runbook, runbook: {command: 'true'}}", "",
			"{kind: cut, target: shard, at: restore, for: 1s}"))
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
		expectStruckAndHealed(out)
	})

	It("makes a drill whose fault never took effect INCONCLUSIVE, never a PASS", func(ctx context.Context) {
		// A delayed standby restores from the standby: its replay works on no sidecar to kill.
		out := runWith(ctx, chaosScenario("{strategy: delayed-standby}", "standbyApplyDelay: 1m",
			"{kind: kill, target: sidecar, at: restore.replay}"))
		Expect(out.Verdict).To(Equal(score.Inconclusive), out.Reason)
		Expect(out.Reason).To(ContainSubstring("was not seen to take effect"))
		Expect(out.Faults[0].Problem).To(ContainSubstring("works on no sidecar"))
	})

	It("strikes a drill step's fault its offset after the step began, however soon the step ended", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "", "{kind: pause, target: catalog, at: workload + 250ms, for: 100ms}"))
		expectPassed(out)
		expectStruckAndHealed(out)
		var workload drill.Event
		for _, e := range out.Events {
			if e.Name == drill.StepWorkload {
				workload = e
			}
		}
		Expect(out.Faults[0].Injected - workload.Start).To(BeNumerically(">=", 250*time.Millisecond))
	})

	It("finds a corrupt WAL segment in the backup check, before any restore reads it, and FAILs", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "", "{kind: wal-corrupt, at: detect}"))
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
		Expect(out.Reason).To(ContainSubstring("WAL archive does not read through"))
		expectStruckAndHealed(out)
	})

	It("crashes the runbook mid-merge and runs it again: the rerun restores only what the crashed run left, and passes", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: runbook, runbook: {command: 'pgdrill restore --strategy pitr-sidecar', timeout: 2m}}", "",
			"{kind: restorer-crash, at: restore.merge, tenants: 1}"))
		expectPassed(out)
		expectStruckAndHealed(out)
		Expect(retriedIn(out)).To(Equal([]string{restore.PhaseRunbook}), "one crash, one rerun")
		By("killing everything the runbook ran at once, and rerunning it from its journal")
		Expect(out.Restore.Output).To(ContainSubstring("crashing: killing everything the program runs at once"))
		Expect(out.Restore.Output).To(ContainSubstring("an earlier run of the restore brought the tenant back"))
		// A shard's tenants come back in one group transaction, so the crash after the first
		// tenant may find the other shard's group committed too: all 4 then came back earlier.
		Expect(out.Restore.Output).To(MatchRegexp(`pitr-sidecar restored 4 tenant\(s\), \d+ row\(s\) written \([1-4] of them by an earlier run`))
		By("leaving no record or process of the crashed restore behind")
		expectNoRecordsOf(out.RunID)
	})

	It("never passes a rerun that skips what the crashed runbook left undone", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario(`{strategy: runbook, runbook: {command: 'if [ -e "$PGDRILL_WORKDIR/ran" ]; then echo nothing left to do; exit 0; fi; `+
			`touch "$PGDRILL_WORKDIR/ran"; pgdrill restore --strategy pitr-sidecar', timeout: 2m}}`, "",
			// As the merge begins, before any group commits: after one tenant, another shard's
			// whole group could commit before the crash struck, and nothing be left undone.
			"{kind: restorer-crash, at: restore.merge}"))
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
		Expect(out.Measures[objective.Completeness].Number).To(BeNumerically("<", 100))
		expectStruckAndHealed(out)
		expectNoRecordsOf(out.RunID) // no rerun's pgdrill restore reaped them: the drill's teardown did
	})

	It("fills the sidecar's disk during replay and frees it after 2s: the restore starts the sidecar again, and passes", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "", "{kind: disk-full, target: sidecar, at: restore.replay, for: 2s}"))
		expectPassed(out)
		expectStruckAndHealed(out)
		Expect(retriedIn(out)).To(ContainElement(restore.PhaseReplay))
		Expect(out.Restore.Retries[0].Cause).To(ContainSubstring("No space left on device"))
		expectNoMounts()
	})

	It("FAILs a restore whose sidecar's disk stays full, saying so", func(ctx context.Context) {
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "", "{kind: disk-full, target: sidecar, at: restore.replay}"))
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
		Expect(out.Reason).To(ContainSubstring("No space left on device"))
		expectStruckAndHealed(out)
		expectNoMounts()
	})

	It("has a step's faults in place before its work begins, and leaves no saved original, proxy or server behind", func(ctx context.Context) {
		// The backup check lists the archive as it begins: racing the removal, it could list
		// the segment still there, and the restore, whose target lies before it, pass.
		out := runWith(ctx, chaosScenario("{strategy: pitr-sidecar}", "",
			"{kind: wal-missing, at: backups}", "{kind: stall, target: catalog, at: backups, for: 1s}"))
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
		Expect(out.Reason).To(ContainSubstring("WAL archive is missing"))
		expectStruckAndHealed(out)
		Expect(out.Problems).NotTo(ContainElement(ContainSubstring("not cleaned up")))
		left, err := filepath.Glob(filepath.Join(os.TempDir(), "pgdrill-*", "*", ".pgdrill-fault-*"))
		Expect(err).NotTo(HaveOccurred())
		Expect(left).To(BeEmpty())
	})
})
