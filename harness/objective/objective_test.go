package objective_test

import (
	"encoding/json"
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/objective"
)

// problemsOf returns the problems carried by err, which must be an *objective.Error.
func problemsOf(err error) []objective.Problem {
	GinkgoHelper()
	var oe *objective.Error
	Expect(errors.As(err, &oe)).To(BeTrue(), "want *objective.Error, got %v", err)
	return oe.Problems
}

var _ = Describe("parsing objectives", func() {
	DescribeTable("accepts the grammar",
		func(text string, metric objective.Metric, op objective.Op, threshold objective.Value, canonical string) {
			o, err := objective.Parse(text)
			Expect(err).NotTo(HaveOccurred())
			Expect(o).To(Equal(objective.Objective{Metric: metric, Op: op, Threshold: threshold}))
			Expect(o.String()).To(Equal(canonical))
			again, err := objective.Parse(o.String())
			Expect(err).NotTo(HaveOccurred())
			Expect(again).To(Equal(o), "the canonical form parses back to the same objective")
		},
		Entry(nil, "rto<=15m", objective.RTO, objective.LE, objective.Duration(15*time.Minute), "rto<=15m"),
		Entry(nil, " rpo <= 5s ", objective.RPO, objective.LE, objective.Duration(5*time.Second), "rpo<=5s"),
		Entry(nil, "rpo<=0", objective.RPO, objective.LE, objective.Duration(0), "rpo<=0s"),
		Entry(nil, "detect<90s", objective.Detect, objective.LT, objective.Duration(90*time.Second), "detect<1m30s"),
		Entry(nil, "rto<=1h0m", objective.RTO, objective.LE, objective.Duration(time.Hour), "rto<=1h"),
		Entry(nil, "completeness>=99.5%", objective.Completeness, objective.GE, objective.Percent(99.5), "completeness>=99.5%"),
		Entry(nil, "completeness==100%", objective.Completeness, objective.EQ, objective.Percent(100), "completeness==100%"),
		Entry(nil, "collateral==0", objective.Collateral, objective.EQ, objective.Rows(0), "collateral==0"),
		Entry(nil, "lost_rows<=10", objective.LostRows, objective.LE, objective.Rows(10), "lost_rows<=10"),
		Entry(nil, "integrity==ok", objective.Integrity, objective.EQ, objective.Status(true), "integrity==ok"),
		Entry(nil, "phase.replay<=2m", objective.Phase("replay"), objective.LE, objective.Duration(2*time.Minute), "phase.replay<=2m"),
	)

	DescribeTable("refuses impossible, pointless and misspelt objectives, saying why",
		func(text, why string) {
			_, err := objective.Parse(text)
			Expect(err).To(HaveOccurred())
			ps := problemsOf(err)
			Expect(ps).To(HaveLen(1))
			Expect(ps[0].Text).To(Equal(text))
			Expect(ps[0].Message).To(ContainSubstring(why))
		},
		Entry("over 100%", "completeness>=120%", "cannot exceed 100%"),
		Entry("above 100%", "completeness>100%", "cannot exceed 100%"),
		Entry("zero restore time", "rto<=0s", "always takes some time"),
		Entry("negative loss", "rpo<0", "never below 0"),
		Entry("negative time", "rto<=-5m", "never negative"),
		Entry("never fails", "completeness>=0%", "can never fail"),
		Entry("exact non-zero count", "collateral==3", "write collateral<=3"),
		Entry("misspelt metric", "rot<=15m", `unknown metric "rot" (did you mean rto?)`),
		Entry("misspelt metric, long", "completness>=100%", "did you mean completeness?"),
		Entry("dash for underscore", "lost-rows==0", "did you mean lost_rows?"),
		Entry("unknown phase", "phase.reply<=2m", `unknown phase "reply" (did you mean replay?)`),
		Entry("nothing close", "throughput>=5", "metrics: rto, rpo, detect"),
		Entry("duration without unit", "rpo<=5", "give a unit"),
		Entry("percentage as duration", "rto<=50%", "is a duration"),
		Entry("duration as percentage", "completeness>=1h", "is a percentage"),
		Entry("fraction of rows", "collateral<=0.5", "whole rows"),
		Entry("percent of rows", "collateral<=5%", "whole rows"),
		Entry("wrong direction for a time", "rto>=15m", "use <= or <"),
		Entry("wrong direction for a share", "completeness<=100%", "use >=, > or =="),
		Entry("wrong direction for harm", "collateral>=0", "bound from above"),
		Entry("integrity not ok", "integrity==bad", "only be required to be ok"),
		Entry("single equals", "rto=15m", "unknown comparison"),
		Entry("not equal", "collateral!=1", "!= is not supported"),
		Entry("no threshold", "rto<=", "has no threshold"),
		Entry("no metric", "<=15m", "names no metric"),
		Entry("no comparison", "rto 15m", "no comparison"),
		Entry("two comparisons", "1m<=rto<=15m", "unknown metric"),
		Entry("chained", "rto<=15m<=20m", "more than one comparison"),
		Entry("empty", "  ", "empty objective"),
	)

	It("reports every problem of a list at once, with its index", func() {
		_, err := objective.ParseAll([]string{"rto<=15m", "rpo<0", "completeness>=120%", "rto<=10m", "colateral==0"})
		ps := problemsOf(err)
		Expect(ps).To(HaveLen(4))
		Expect(ps[0]).To(Equal(objective.Problem{Index: 1, Text: "rpo<0", Message: ps[0].Message}))
		Expect(ps[1].Index).To(Equal(2))
		Expect(ps[2].Index).To(Equal(3))
		Expect(ps[2].Message).To(ContainSubstring(`already constrained by "rto<=15m"`))
		Expect(ps[3].Index).To(Equal(4))
		Expect(ps[3].Message).To(ContainSubstring("did you mean collateral?"))
		Expect(err.Error()).To(ContainSubstring(`objective "rpo<0": `))
	})

	It("round-trips through JSON as text", func() {
		objs, err := objective.ParseAll([]string{"rto<=15m", "integrity==ok"})
		Expect(err).NotTo(HaveOccurred())
		b, err := json.Marshal(objs)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(MatchJSON(`["rto<=15m","integrity==ok"]`))
		var back objective.Objectives
		Expect(json.Unmarshal(b, &back)).To(Succeed())
		Expect(back).To(Equal(objs))
		Expect(json.Unmarshal([]byte(`["rto<=0s"]`), &back)).To(MatchError(ContainSubstring("can never pass")))
	})
})

var _ = Describe("tier presets", func() {
	It("gives every tier valid objectives that forbid collateral, broken integrity and broken backups", func() {
		for _, t := range objective.Tiers() {
			Expect(t.Valid()).To(BeTrue())
			objs, err := objective.Preset(t)
			Expect(err).NotTo(HaveOccurred(), string(t))
			Expect(objs.Strings()).To(ContainElements("collateral==0", "integrity==ok", "backups==verified"), string(t))
		}
		critical, _ := objective.Preset(objective.Critical)
		Expect(critical.Strings()).To(Equal([]string{"rto<=15m", "rpo<=5s", "completeness>=100%", "collateral==0", "integrity==ok", "backups==verified"}))
	})

	It("refuses an unknown tier with a hint", func() {
		Expect(objective.Tier("critcal").Valid()).To(BeFalse())
		_, err := objective.Preset("critcal")
		Expect(err).To(MatchError(ContainSubstring("did you mean critical?")))
	})
})

var _ = Describe("evaluating objectives", func() {
	objs := func(texts ...string) objective.Objectives {
		GinkgoHelper()
		o, err := objective.ParseAll(texts)
		Expect(err).NotTo(HaveOccurred())
		return o
	}

	It("passes what meets its threshold and fails what does not, saying by how much", func() {
		rs := objs("rto<=15m", "rpo<=5s", "completeness>=100%", "collateral==0", "integrity==ok", "phase.replay<2m").
			Evaluate(objective.Measures{
				objective.RTO:             objective.Duration(17*time.Minute + 2*time.Second),
				objective.RPO:             objective.Duration(5 * time.Second),
				objective.Completeness:    objective.Percent(99.5),
				objective.Collateral:      objective.Rows(3),
				objective.Integrity:       objective.Status(true),
				objective.Phase("replay"): objective.Duration(time.Minute),
			})
		Expect(rs).To(HaveLen(6))
		passed := make([]bool, len(rs))
		for i, r := range rs {
			passed[i] = r.Passed
			Expect(r.Inconclusive).To(BeFalse())
			Expect(r.Measured).NotTo(BeNil())
			Expect(r.Threshold).To(Equal(r.Objective.Threshold))
		}
		Expect(passed).To(Equal([]bool{false, true, false, false, true, true}))
		Expect(rs[0].Reason).To(Equal("rto was 17m2s, over the objective rto<=15m by 2m2s"))
		Expect(rs[1].Reason).To(Equal("rpo was 5s, within the objective rpo<=5s"), "the bound itself passes <=")
		Expect(rs[2].Reason).To(Equal("completeness was 99.5%, below the objective completeness>=100%"))
		Expect(rs[3].Reason).To(Equal("collateral was 3 rows, not meeting the objective collateral==0"))
		Expect(rs[4].Reason).To(ContainSubstring("integrity checks passed"))
	})

	It("fails a broken integrity", func() {
		r := objs("integrity==ok")[0].Evaluate(objective.Measures{objective.Integrity: objective.Status(false)})
		Expect(r.Passed).To(BeFalse())
		Expect(r.Reason).To(ContainSubstring("integrity checks failed"))
	})

	It("never passes what was not measured, or was measured in another unit", func() {
		rs := objs("rto<=15m", "lost_rows==0").Evaluate(objective.Measures{objective.LostRows: objective.Percent(0)})
		for _, r := range rs {
			Expect(r.Passed).To(BeFalse())
			Expect(r.Inconclusive).To(BeTrue())
			Expect(r.Measured).To(BeNil())
		}
		Expect(rs[0].Reason).To(Equal("rto was not measured, so rto<=15m cannot pass"))
		Expect(rs[1].Reason).To(ContainSubstring("measured in percent, not rows"))
		b, err := json.Marshal(rs[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(MatchJSON(`{"objective":"rto<=15m","passed":false,"inconclusive":true,
			"threshold":{"unit":"duration","value":900},"reason":"rto was not measured, so rto<=15m cannot pass"}`))
	})
})
