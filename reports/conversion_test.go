package reports_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	objectives "github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/reports"
)

// What the report model promises whoever converts a drill's outcome into it (drill.Report) and
// whoever reads it: the verdicts and units it takes over by name from the judge and the
// objectives, and the figures and words it derives from what it is given.

var _ = Describe("the report model's verdicts", func() {
	DescribeTable("say whether they pass, with a glyph and words of their own",
		func(v reports.Verdict, passed bool, symbol, words string) {
			Expect(v.Known()).To(BeTrue())
			Expect(v.Passed()).To(Equal(passed))
			Expect((&reports.Report{Verdict: v}).Passed()).To(Equal(passed), "what CI gates on")
			Expect(v.Symbol()).To(Equal(symbol))
			Expect(v.Words()).To(Equal(words))
		},
		Entry(nil, reports.Pass, true, "✔", "Passed"),
		Entry(nil, reports.PassWithConditions, true, "✔!", "Passed, with conditions"),
		Entry(nil, reports.Fail, false, "✖", "Failed"),
		Entry(nil, reports.Aborted, false, "⚠", "Aborted"),
		Entry(nil, reports.Error, false, "⚠", "Harness error"),
		Entry(nil, reports.Inconclusive, false, "?", "Inconclusive"),
	)

	It("refuses a verdict it does not know, and never passes it", func() {
		for _, v := range []reports.Verdict{"GREEN", "pass", "PASS ", ""} {
			Expect(v.Known()).To(BeFalse(), "%q", v)
			Expect(v.Passed()).To(BeFalse(), "%q", v)
		}
	})

	It("are the judge's verdicts, by the same names and with the same pass meaning, so that converting one by name keeps it", func() {
		judged := []score.Verdict{score.Pass, score.PassWithConditions, score.Fail, score.Aborted, score.Error, score.Inconclusive}
		var converted []reports.Verdict
		for _, v := range judged {
			r := reports.Verdict(v)
			Expect(r.Known()).To(BeTrue(), "%s", v)
			Expect(r.Passed()).To(Equal(v == score.Pass || v == score.PassWithConditions), "%s", v)
			converted = append(converted, r)
		}
		Expect(converted).To(ConsistOf(reports.Verdicts()), "no verdict of the report model the judge cannot give")
	})
})

var _ = Describe("the report model's units", func() {
	DescribeTable("are the objectives' units by name",
		func(u objectives.Unit, want reports.Unit) { Expect(reports.Unit(u)).To(Equal(want)) },
		Entry(nil, objectives.UnitDuration, reports.UnitDuration),
		Entry(nil, objectives.UnitPercent, reports.UnitPercent),
		Entry(nil, objectives.UnitRows, reports.UnitRows),
		Entry(nil, objectives.UnitStatus, reports.UnitStatus),
	)
})

var _ = Describe("outcomes", func() {
	DescribeTable("of an objective and of a check carry a word and a symbol, never colour alone",
		func(passed, inconclusive bool, class, symbol, objectiveWord, checkWord string) {
			o := reports.ObjectiveResult{Passed: passed, Inconclusive: inconclusive}.Outcome()
			Expect(o).To(Equal(reports.Outcome{Class: class, Symbol: symbol, Word: objectiveWord}))
			c := reports.Check{Passed: passed, Inconclusive: inconclusive}.Outcome()
			Expect(c).To(Equal(reports.Outcome{Class: class, Symbol: symbol, Word: checkWord}))
		},
		Entry("passed", true, false, "pass", "✔", "met", "passed"),
		Entry("failed", false, false, "fail", "✖", "missed", "failed"),
		Entry("not judged", false, true, "unknown", "?", "not judged", "not judged"),
		Entry("not judged outweighs a pass that cannot be (an invalid report)", true, true, "unknown", "?", "not judged", "not judged"),
	)
})

var _ = Describe("the figures a report derives", func() {
	DescribeTable("completeness is the share of expected rows restored, and nothing expected is nothing missing",
		func(expected, restored int64, want float64) {
			Expect(reports.Measures{RowsExpected: expected, RowsRestored: restored}.Completeness()).To(BeNumerically("~", want, 1e-9))
		},
		Entry(nil, int64(0), int64(0), 100.0),
		Entry(nil, int64(48_210), int64(48_210), 100.0),
		Entry(nil, int64(48_210), int64(48_210-58), 100*float64(48_210-58)/48_210),
		Entry(nil, int64(10), int64(0), 0.0),
	)

	DescribeTable("judged, broken backups, harmed bystanders and shards hit, from the report's own lists",
		func(build func() *reports.Report, judged, backupsBroken bool, bystanders, shards int) {
			r := build()
			Expect(r.Judged()).To(Equal(judged))
			Expect(r.BackupsBroken()).To(Equal(backupsBroken))
			Expect(r.CollateralTenants()).To(Equal(bystanders))
			Expect(r.Incident.Shards()).To(Equal(shards))
		},
		Entry("a verified pass", passReport, true, false, 0, 3),
		Entry("a fail with collateral counts each bystander once", failReport, true, false, 3, 3),
		Entry("an error judged nothing", errorReport, false, false, 0, 3),
		Entry("broken backups", brokenBackupsReport, false, true, 0, 3),
		Entry("no incident: no shard hit", func() *reports.Report {
			r := errorReport()
			r.Incident = reports.Incident{}
			return r
		}, false, false, 0, 0),
		Entry("one check that ran is a verification", func() *reports.Report {
			r := errorReport()
			r.Checks[1] = reports.Check{Name: "placement", Passed: false, Detail: "tenant 7 is on shard 2"}
			return r
		}, true, false, 0, 3),
	)

	It("finds an objective by its metric, and says when there is none", func() {
		r := passReport()
		o, ok := r.Objective("rpo")
		Expect(ok).To(BeTrue())
		Expect(o.Expression).To(Equal("rpo<=5s"))
		_, ok = r.Objective("detect")
		Expect(ok).To(BeFalse())
	})

	DescribeTable("a span lasts from its start to its end offset",
		func(s reports.Span, want time.Duration) { Expect(s.Duration()).To(Equal(want)) },
		Entry("a phase", phase("replay", 1, 1_500, 4_250), 2_750*time.Millisecond),
		Entry("an event", event("incident", 40_000), time.Duration(0)),
	)
})

var _ = Describe("Validate", func() {
	DescribeTable("names each inconsistency a converter could make",
		func(change func(*reports.Report), problem string) {
			r := passReport()
			change(r)
			Expect(r.Validate()).To(MatchError(ContainSubstring(problem)))
		},
		Entry("another schema version", func(r *reports.Report) { r.SchemaVersion = "pgdrill.report/v0" }, `schema_version is "pgdrill.report/v0"`),
		Entry("no scenario", func(r *reports.Report) { r.Scenario.ID = "" }, "scenario.id is empty"),
		Entry("no start", func(r *reports.Report) { r.Started, r.Finished = time.Time{}, time.Time{} }, "started is not set"),
		Entry("a span that ends before it starts", func(r *reports.Report) { r.Timeline[0].EndMS = r.Timeline[0].StartMS - 1 },
			"timeline[0] provision ends"),
		Entry("a shard below -1", func(r *reports.Report) { r.Timeline[0].Shard = -2 }, "use -1 for the whole cluster"),
		Entry("a span of no kind", func(r *reports.Report) { r.Timeline[0].Kind = "" }, `has kind ""; want phase or event`),
		Entry("an objective without its expression", func(r *reports.Report) { r.Objectives[1].Expression = "" }, "objectives[1] has no expression"),
		Entry("an objective passed unmeasured", func(r *reports.Report) { r.Objectives[1].Measured = nil },
			"objectives[1] rpo<=5s passed without a measured value"),
		Entry("a check both passed and not run", func(r *reports.Report) { r.Checks[2].Inconclusive = true },
			"checks[2] routing is both passed and inconclusive"),
		Entry("more rows restored than expected", func(r *reports.Report) { r.Measures.RowsRestored = r.Measures.RowsExpected + 1 },
			"exceeds rows_expected"),
		Entry("a PASS with an objective not judged", func(r *reports.Report) {
			r.Objectives[1] = reports.ObjectiveResult{Expression: "rpo<=5s", Metric: "rpo", Inconclusive: true, Reason: "not measured"}
		}, "verdict PASS with objective rpo<=5s not passed"),
	)

	DescribeTable("accepts what a real drill reports",
		func(change func(*reports.Report)) {
			r := passReport()
			change(r)
			Expect(r.Validate()).To(Succeed())
		},
		Entry("every example as built", func(*reports.Report) {}),
		Entry("a PASS_WITH_CONDITIONS with collateral an objective tolerates", func(r *reports.Report) {
			r.Verdict = reports.PassWithConditions
			r.Collateral = []reports.Collateral{{Tenant: 12, Shard: 1, Table: "comments", Rows: 2, Differs: "2 missing"}}
		}),
		Entry("an event on the whole cluster, lasting nothing", func(r *reports.Report) {
			r.Timeline = append(r.Timeline, event("detected", 70_000))
		}),
		Entry("nothing expected and nothing restored", func(r *reports.Report) { r.Measures.RowsExpected, r.Measures.RowsRestored = 0, 0 }),
	)

	It("accepts every hand-built example", func() {
		for _, name := range exampleNames() {
			Expect(examples[name]().Validate()).To(Succeed(), name)
		}
	})
})
