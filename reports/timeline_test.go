package reports_test

import (
	"regexp"
	"strconv"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/reports"
)

var _ = Describe("the scorecard's timeline", func() {
	// fastDrill is the default drill restored in about 5 s against its 15 min objective, the harm
	// landing on three shards in the same few milliseconds.
	fastDrill := func() *reports.Report {
		r := passReport()
		const incident = 40_000
		r.Timeline = []reports.Span{event("incident", incident)}
		for shard := range 3 {
			r.Timeline = append(r.Timeline, reports.Span{Name: "harm", Kind: reports.KindEvent, Shard: shard,
				StartMS: incident + int64(shard), EndMS: incident + int64(shard)})
			r.Timeline = append(r.Timeline, phase("replay", shard, incident+1_000, incident+3_000+int64(shard)*200),
				phase("merge", shard, incident+3_000+int64(shard)*200, incident+4_500))
		}
		r.Timeline = append(r.Timeline, phase("verify", -1, incident+4_500, incident+5_000), event("verified", incident+5_000))
		return r
	}

	It("draws the work to scale when the RTO is far below the objective, and says where the deadline is", func() {
		html, err := reports.HTML(fastDrill())
		Expect(err).NotTo(HaveOccurred())
		page := string(html)
		widths := regexp.MustCompile(`<rect class="c\d" x="[\d.]+" y="[\d.]+" width="([\d.]+)"`).FindAllStringSubmatch(page, -1)
		Expect(widths).To(HaveLen(7), "a bar per phase and shard")
		for _, w := range widths {
			Expect(strconv.ParseFloat(w[1], 64)).To(BeNumerically(">", 20), "a phase of half a second or more is visible, not a pixel at 0 s")
		}
		Expect(page).To(ContainSubstring("RTO objective 15 min: off the chart"))
		Expect(page).To(ContainSubstring("RTO objective at 15 min, beyond the end of the chart"), "the text equivalent says so too")
	})

	It("labels an event that happened on several shards at once once", func() {
		html, err := reports.HTML(fastDrill())
		Expect(err).NotTo(HaveOccurred())
		page := string(html)
		Expect(strings.Count(page, `<line class="event"`)).To(Equal(5), "a line for every event")
		Expect(strings.Count(page, `text-anchor="middle">harm</text>`)).To(Equal(1), "one label for the three harms")
		Expect(strings.Count(page, `text-anchor="middle">incident</text>`)).To(Equal(1))
	})
})
