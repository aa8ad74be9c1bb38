package drill_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

var _ = Describe("the report of an outcome", func() {
	started := time.Date(2026, 3, 9, 2, 0, 0, 0, time.UTC)
	// outcome is a drill's outcome built by hand: its incident 40 s in, a harm on two shards.
	outcome := func(verdict score.Verdict) *drill.Outcome {
		sc, err := scenarios.Lookup("wrong-id-deletion")
		Expect(err).NotTo(HaveOccurred())
		return &drill.Outcome{Scenario: sc, RunID: "r1a2b3c4d", ScenarioID: sc.Metadata.ID, Strategy: "pitr-sidecar", Seed: 7,
			Started: started, Finished: started.Add(time.Minute), Verdict: verdict, Reason: "said in words",
			Events: []drill.Event{{Name: drill.StepDetect, Shard: -1, Start: 40 * time.Second, End: 42 * time.Second, At: started.Add(40 * time.Second)}},
			Incident: &incident.Record{Kind: "wrong-id-deletion", RunID: "r1a2b3c4d", Affected: []incident.Tenant{{ID: 3, Shard: 0}, {ID: 9, Shard: 1}},
				Harms: []incident.Harm{
					{Shard: 0, Tenants: []int64{3}, Time: started.Add(40 * time.Second), Noted: started.Add(40*time.Second + 5*time.Millisecond), Rows: 10},
					{Shard: 1, Tenants: []int64{9}, Time: started.Add(41 * time.Second), Noted: started.Add(41 * time.Second), Rows: 20},
				}},
			Measures: objective.Measures{objective.RTO: objective.Duration(1005 * time.Millisecond), objective.Detect: objective.Duration(2 * time.Second)},
			Notes:    []string{"delayed-standby restores from protection scenario x does not take"},
			Restore:  &restore.Result{Strategy: "runbook", Output: "line 1\nline 2\n"},
		}
	}

	DescribeTable("carries every verdict over by name, and validates", func(v score.Verdict) {
		r := drill.Report(outcome(v))
		Expect(string(r.Verdict)).To(Equal(string(v)))
		Expect(r.Validate()).To(Succeed())
	}, Entry(nil, score.Pass), Entry(nil, score.PassWithConditions), Entry(nil, score.Fail),
		Entry(nil, score.Error), Entry(nil, score.Aborted), Entry(nil, score.Inconclusive))

	It("times the harms from the drill's start on the harness's clock, and rounds measures to the millisecond", func() {
		r := drill.Report(outcome(score.Pass))
		Expect(r.Incident.AtMS).To(BeEquivalentTo(40_005), "the first harm the harness saw")
		Expect(r.Incident.HarmedRows).To(BeEquivalentTo(30))
		Expect(r.Incident.Harms).To(HaveLen(2))
		Expect(r.Incident.Harms[1].OffsetMS).To(BeEquivalentTo(41_000))
		var harms []reports.Span
		for _, s := range r.Timeline {
			if s.Name == "harm" {
				harms = append(harms, s)
			}
		}
		Expect(harms).To(HaveLen(2))
		Expect(harms[0].Kind).To(Equal(reports.KindEvent))
		Expect(*r.Measures.RTOMS).To(BeEquivalentTo(1005), "not 1004: float seconds are rounded, not truncated")
		Expect(*r.Measures.DetectMS).To(BeEquivalentTo(2000))
		Expect(r.Measures.RPOMS).To(BeNil(), "not measured is not zero")
	})

	It("keeps the drill's notes and the runbook's output: its tail in the report, all of it for runbook.log", func() {
		o := outcome(score.Fail)
		var out string
		for i := range 100 {
			out += "line " + string(rune('a'+i%26)) + "\n"
		}
		o.Restore.Output = out
		r := drill.Report(o)
		Expect(r.Notes).To(Equal(o.Notes))
		Expect(r.Runbook).NotTo(BeNil())
		Expect(r.Runbook.Log).To(Equal(out))
		Expect(r.Runbook.Tail).To(HaveSuffix("line v"), "the last line printed")
		Expect(strings.Split(r.Runbook.Tail, "\n")).To(HaveLen(reports.RunbookTailLines))
	})
})
