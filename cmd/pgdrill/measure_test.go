package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/pgdrill/pgdrill/harness/costmodel"
)

// measuredDrill is smallDrill with a production size to project to.
var measuredDrill = smallDrill + `  projection: {dataGB: 2000, walGBPerHour: 20, backupAge: 12h, tenants: 883, rowsPerTenant: 50000, shards: 16}
`

var _ = Describe("pgdrill measure", Label("slow"), func() {
	It("sweeps a small scenario, fits every phase's curve, and projects the RTO into a drill's scorecard, labelled a projection", func() {
		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "small.yaml")
		Expect(os.WriteFile(file, []byte(measuredDrill), 0o600)).To(Succeed())
		out := filepath.Join(dir, "reports")

		By("measuring 4 drills of one shard")
		s := pgdrill("measure", file, "--sizes", "0.5,1", "--out", out, "-o", "json").Wait(5 * time.Minute)
		Expect(s).To(gexec.Exit(0), string(s.Err.Contents()))
		var m struct {
			Curves     costmodel.Curves      `json:"curves"`
			Drills     []string              `json:"drills"`
			Projection *costmodel.Projection `json:"projection"`
		}
		Expect(json.Unmarshal(s.Out.Contents(), &m)).To(Succeed())
		Expect(m.Drills).To(HaveLen(4))
		Expect(m.Curves.Curves).To(HaveLen(3))
		for _, c := range m.Curves.Curves {
			Expect(c.Points).To(HaveLen(4), c.Phase)
			Expect(c.Coefficients).To(HaveEach(BeNumerically(">=", 0)), c.Phase)
			for _, p := range c.Points {
				Expect(p.Seconds).To(BeNumerically(">", 0), "%s: a measured time", c.Phase)
			}
		}
		merge := m.Curves.Curves[2]
		Expect(merge.Phase).To(Equal(costmodel.PhaseMerge))
		tenants := map[float64]bool{}
		for _, p := range merge.Points {
			Expect(p.Work[costmodel.Rows]).To(BeNumerically(">", 0), "rows merged are measured")
			tenants[p.Work[costmodel.Tenants]] = true
		}
		Expect(len(tenants)).To(BeNumerically(">", 1), "the sweep varies the tenants harmed")
		Expect(m.Projection).NotTo(BeNil())
		Expect(m.Projection.Label).To(ContainSubstring("not a measured RTO"))
		Expect(m.Projection.Seconds).To(BeNumerically(">", 0))
		Expect(m.Projection.Phases).To(HaveLen(3))
		Expect(m.Projection.Phases[0].Extrapolation).To(BeNumerically(">", 100), "2 TB is far beyond a small shard, and it says so")
		curves := filepath.Join(filepath.Dir(m.Drills[0]), "curves.json")
		Expect(curves).To(BeAnExistingFile())

		By("running the drill with those curves: its report and scorecard carry the projection")
		s = pgdrill("run", file, "--curves", curves, "--out", out, "-o", "json").Wait(3 * time.Minute)
		Expect(s).To(gexec.Exit(0), string(s.Err.Contents()))
		var runs []struct {
			RunID string `json:"run_id"`
		}
		Expect(json.Unmarshal(s.Out.Contents(), &runs)).To(Succeed())
		report := filepath.Join(out, runs[0].RunID)
		var rep struct {
			Projection *costmodel.Projection `json:"projection"`
		}
		data, err := os.ReadFile(filepath.Join(report, "report.json"))
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(data, &rep)).To(Succeed())
		Expect(rep.Projection).NotTo(BeNil())
		Expect(rep.Projection.Seconds).To(BeNumerically("~", m.Projection.Seconds, 1e-6), "the same curves project the same")
		html, err := os.ReadFile(filepath.Join(report, "scorecard.html"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(html)).To(And(ContainSubstring("not a measured RTO"), ContainSubstring(`class="projection"`)))
		md, err := os.ReadFile(filepath.Join(report, "summary.md"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(md)).To(ContainSubstring("Projected to production size (not a measured RTO)"))

		By("refusing curves for a scenario that names no production size, and curves that are not curves")
		plain := filepath.Join(dir, "plain.yaml")
		Expect(os.WriteFile(plain, []byte(smallDrill), 0o600)).To(Succeed())
		s = finish("run", plain, "--curves", curves)
		Expect(s).To(gexec.Exit(2))
		Expect(string(s.Err.Contents())).To(ContainSubstring("spec.projection"))
		Expect(finish("run", file, "--curves", file)).To(gexec.Exit(2))
		Expect(strings.Contains(string(finish("measure", file, "--sizes", "0").Err.Contents()), "not a size above 0")).To(BeTrue())
	})
})
