package costmodel_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/costmodel"
)

// line makes points of seconds = fixed + perGB × gb, with noise drawn from rng (none when nil).
func line(fixed, perGB float64, gbs []float64, rng *rand.Rand, noise float64) []costmodel.Point {
	var out []costmodel.Point
	for _, gb := range gbs {
		s := fixed + perGB*gb
		if rng != nil {
			s += noise * rng.NormFloat64()
		}
		out = append(out, costmodel.Point{Work: map[costmodel.Feature]float64{costmodel.DataGB: gb}, Seconds: s})
	}
	return out
}

var byGB = []costmodel.Feature{costmodel.Fixed, costmodel.DataGB}

var _ = Describe("fitting a phase", func() {
	It("finds the coefficients of points on a line, with no error", func() {
		c, err := costmodel.Fit("provision", byGB, line(2, 3, []float64{0.5, 1, 2, 4}, nil, 0))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Coefficients[0]).To(BeNumerically("~", 2, 1e-9))
		Expect(c.Coefficients[1]).To(BeNumerically("~", 3, 1e-9))
		Expect(c.RMSE).To(BeNumerically("~", 0, 1e-9))
		Expect(c.R2).To(BeNumerically("~", 1, 1e-12))
		s, half := c.Predict(map[costmodel.Feature]float64{costmodel.DataGB: 100})
		Expect(s).To(BeNumerically("~", 302, 1e-6))
		Expect(half).To(BeNumerically("~", 0, 1e-6))
	})

	It("fits three features apart when the points vary them independently", func() {
		var pts []costmodel.Point
		for _, p := range [][2]float64{{1, 0.1}, {10, 0.1}, {10, 1}, {100, 0.5}, {50, 2}} {
			pts = append(pts, costmodel.Point{Work: map[costmodel.Feature]float64{costmodel.Tenants: p[0], costmodel.Rows: p[1]},
				Seconds: 0.5 + 0.02*p[0] + 4*p[1]})
		}
		c, err := costmodel.Fit("merge", []costmodel.Feature{costmodel.Fixed, costmodel.Tenants, costmodel.Rows}, pts)
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Coefficients).To(HaveExactElements(
			BeNumerically("~", 0.5, 1e-9), BeNumerically("~", 0.02, 1e-9), BeNumerically("~", 4, 1e-9)))
	})

	It("gives noisy points a 95% interval that holds 95% of new measurements, wider the farther it projects", func() {
		const trials = 400
		covered := 0
		for seed := range uint64(trials) {
			rng := rand.New(rand.NewPCG(seed, 2))
			c, err := costmodel.Fit("provision", byGB, line(2, 3, []float64{0.5, 1, 1.5, 2, 3, 4}, rng, 0.2))
			Expect(err).NotTo(HaveOccurred())
			far, halfFar := c.Predict(map[costmodel.Feature]float64{costmodel.DataGB: 40})
			_, halfNear := c.Predict(map[costmodel.Feature]float64{costmodel.DataGB: 2})
			Expect(halfFar).To(BeNumerically(">", 2*halfNear))
			if math.Abs(far-(122+0.2*rng.NormFloat64())) <= halfFar {
				covered++
			}
		}
		Expect(float64(covered) / trials).To(BeNumerically("~", 0.95, 0.03))
	})

	It("never fits a negative cost: a feature that would come out below zero is dropped", func() {
		// A phase with no fixed cost whose points sag at the small end: unconstrained, the fit
		// gives a negative fixed cost.
		pts := []costmodel.Point{
			{Work: map[costmodel.Feature]float64{costmodel.DataGB: 1}, Seconds: 1},
			{Work: map[costmodel.Feature]float64{costmodel.DataGB: 2}, Seconds: 4},
			{Work: map[costmodel.Feature]float64{costmodel.DataGB: 3}, Seconds: 7},
		}
		c, err := costmodel.Fit("provision", byGB, pts)
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Coefficients[0]).To(BeZero())
		Expect(c.Coefficients[1]).To(BeNumerically("~", 30.0/14, 1e-9), "Σxy/Σx² through the origin")
	})

	It("refuses points too few for the features, or that do not tell them apart", func() {
		_, err := costmodel.Fit("provision", byGB, line(2, 3, []float64{1}, nil, 0))
		Expect(err).To(MatchError(costmodel.ErrTooFewPoints))
		_, err = costmodel.Fit("provision", byGB, line(2, 3, []float64{1, 1, 1}, nil, 0))
		Expect(err).To(MatchError(ContainSubstring("do not tell the features apart")))
	})
})

// exactCurves are curves whose every point lies on a known line, with a spare point each.
func exactCurves() costmodel.Curves {
	GinkgoHelper()
	pts := map[string][]costmodel.Point{}
	for _, gb := range []float64{1, 2, 4} {
		pts[costmodel.PhaseProvision] = append(pts[costmodel.PhaseProvision],
			costmodel.Point{Work: map[costmodel.Feature]float64{costmodel.DataGB: gb}, Seconds: 1 + 10*gb})
		pts[costmodel.PhaseReplay] = append(pts[costmodel.PhaseReplay],
			costmodel.Point{Work: map[costmodel.Feature]float64{costmodel.WALGB: gb}, Seconds: 0.5 + 20*gb})
	}
	for _, p := range [][2]float64{{1, 0.1}, {10, 0.1}, {10, 1}, {100, 0.5}} {
		pts[costmodel.PhaseMerge] = append(pts[costmodel.PhaseMerge], costmodel.Point{
			Work: map[costmodel.Feature]float64{costmodel.Tenants: p[0], costmodel.Rows: p[1]}, Seconds: 0.2 + 0.01*p[0] + 5*p[1]})
	}
	c, err := costmodel.FitAll("test machine", pts)
	Expect(err).NotTo(HaveOccurred())
	return c
}

var _ = Describe("projecting a production incident", func() {
	prod := costmodel.Production{DataGB: 800, WALGBPerHour: 4, BackupAge: 12 * time.Hour, Tenants: 883, RowsPerTenant: 20000, Shards: 8}

	It("adds up each phase's curve at one shard's share, and names the phase that dominates", func() {
		p, err := costmodel.Project(exactCurves(), prod)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.Label).To(ContainSubstring("not a measured RTO"))
		// One shard: 100 GB of data, 6 GB of WAL, 111 tenants of 20,000 rows (2.22 M rows).
		provision, replay, merge := 1+10*100.0, 0.5+20*6.0, 0.2+0.01*111+5*2.22
		Expect(p.Phases).To(HaveLen(3))
		Expect(p.Phases[0].Seconds).To(BeNumerically("~", provision, 1e-6))
		Expect(p.Phases[1].Seconds).To(BeNumerically("~", replay, 1e-6))
		Expect(p.Phases[2].Seconds).To(BeNumerically("~", merge, 1e-6))
		Expect(p.Seconds).To(BeNumerically("~", provision+replay+merge, 1e-6))
		Expect(p.Dominant).To(Equal(costmodel.PhaseProvision))
		Expect(p.Advice).To(ContainSubstring("delayed standby"))
		Expect(p.Phases[0].Extrapolation).To(BeNumerically("~", 25, 1e-9), "100 GB against 4 GB measured")
		Expect(p.High).NotTo(BeNil())
		Expect(*p.High).To(BeNumerically("~", p.Seconds, 1e-3), "exact points: no error to widen it")
	})

	It("projects the same from curves written out and read back", func() {
		data, err := json.Marshal(exactCurves())
		Expect(err).NotTo(HaveOccurred())
		var back costmodel.Curves
		Expect(json.Unmarshal(data, &back)).To(Succeed())
		a, err := costmodel.Project(exactCurves(), prod)
		Expect(err).NotTo(HaveOccurred())
		b, err := costmodel.Project(back, prod)
		Expect(err).NotTo(HaveOccurred())
		Expect(b.Seconds).To(BeNumerically("~", a.Seconds, 1e-9))
		Expect(*b.High).To(BeNumerically("~", *a.High, 1e-9))
	})

	It("says the range is unknown when a curve has no spare point", func() {
		c := exactCurves()
		c.Curves[2].Points = c.Curves[2].Points[:3]
		data, err := json.Marshal(c)
		Expect(err).NotTo(HaveOccurred())
		var back costmodel.Curves
		Expect(json.Unmarshal(data, &back)).To(Succeed())
		p, err := costmodel.Project(back, prod)
		Expect(err).NotTo(HaveOccurred())
		Expect(p.High).To(BeNil())
		Expect(p.Summary()).To(ContainSubstring("unknown"))
	})

	It("names every impossible field of a production size", func() {
		_, err := costmodel.Project(exactCurves(), costmodel.Production{DataGB: -1, Tenants: 0, RowsPerTenant: 1, Shards: 0})
		Expect(err).To(MatchError(And(ContainSubstring("dataGB"), ContainSubstring("tenants"), ContainSubstring("shards"))))
	})
})
