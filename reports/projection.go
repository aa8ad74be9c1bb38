package reports

import (
	"fmt"
	"math"
	"time"
)

// projectionChart draws a Projection: one bar per phase and one for the whole restore, each from
// zero to the fit's estimate with a whisker over its range, and the RTO objective as a line. It
// is titled as a projection, never as a measurement.
type projectionChart struct {
	Width, Height float64
	PlotLeft      float64
	Rows          []projectionRow
	// Objective is the RTO objective's line, when the scenario has one.
	Objective *projectionMark
	// Desc is the chart's text equivalent.
	Desc string
}

type projectionRow struct {
	Label              string
	Y, TextY           float64
	X, W               float64
	WhiskerL, WhiskerR float64
	// Open says the range has no upper bound (the fit had no error estimate): the whisker runs
	// to the edge.
	Open  bool
	Title string
}

type projectionMark struct {
	X     float64
	Label string
}

const (
	projWidth    = 640.0
	projLeft     = 110.0
	projRowPitch = 22.0
)

// projection returns the chart of r's projection; nil when it has none.
func projection(r *Report) *projectionChart {
	p := r.Projection
	if p == nil {
		return nil
	}
	type bar struct {
		label          string
		est, low, high float64
	}
	bars := make([]bar, 0, len(p.Phases)+1)
	for _, ph := range p.Phases {
		bars = append(bars, bar{ph.Phase, ph.Seconds, ph.Low, highOf(ph.High)})
	}
	bars = append(bars, bar{"restore", p.Seconds, p.Low, highOf(p.High)})
	top := 0.0
	for _, b := range bars {
		top = max(top, b.est*1.5)
		if !math.IsInf(b.high, 1) {
			top = max(top, b.high)
		}
	}
	o, hasObjective := r.Objective("rto")
	if hasObjective {
		top = max(top, o.Threshold.Value)
	}
	top = max(top*1.05, 1)
	scale := (projWidth - projLeft - 10) / top
	c := &projectionChart{Width: projWidth, PlotLeft: projLeft, Height: 20 + projRowPitch*float64(len(bars))}
	for i, b := range bars {
		y := 10 + projRowPitch*float64(i)
		row := projectionRow{Label: b.label, Y: y, TextY: y + 9, X: projLeft, W: round1(b.est * scale),
			WhiskerL: round1(projLeft + b.low*scale)}
		if math.IsInf(b.high, 1) {
			row.Open, row.WhiskerR = true, projWidth-10
		} else {
			row.WhiskerR = round1(projLeft + b.high*scale)
		}
		row.Title = fmt.Sprintf("%s: %s (%s – %s)", b.label, inWords(b.est), inWords(b.low), secondsOrUnknown(b.high))
		c.Rows = append(c.Rows, row)
	}
	if hasObjective {
		c.Objective = &projectionMark{X: round1(projLeft + o.Threshold.Value*scale), Label: "objective " + o.Threshold.String()}
	}
	c.Desc = p.Summary()
	if hasObjective {
		c.Desc += "; objective " + o.Threshold.String()
	}
	return c
}

func highOf(h *float64) float64 {
	if h == nil {
		return math.Inf(1)
	}
	return *h
}

func inWords(s float64) string { return Words(time.Duration(s * float64(time.Second))) }

func secondsOrUnknown(s float64) string {
	if math.IsInf(s, 1) {
		return "unknown"
	}
	return inWords(s)
}

// ProjectionLines are the projection in words, one line per phase after a headline; none when
// the report has no projection: what the terminal and Markdown scorecards print.
func (r *Report) ProjectionLines() []string {
	p := r.Projection
	if p == nil {
		return nil
	}
	prod := p.Production
	lines := []string{fmt.Sprintf("%s (%s): %s", p.Label, p.Machine, p.Summary()),
		fmt.Sprintf("for %d tenants of %s rows harmed on %d shards of %s GB in all, %s GB of WAL per hour, base backups %s old",
			prod.Tenants, Thousands(int64(prod.RowsPerTenant)), prod.Shards, trimFloat(prod.DataGB), trimFloat(prod.WALGBPerHour), prod.BackupAge)}
	for _, ph := range p.Phases {
		line := fmt.Sprintf("%s: %s (%s – %s)", ph.Phase, inWords(ph.Seconds), inWords(ph.Low), secondsOrUnknown(highOf(ph.High)))
		if ph.Extrapolation > 1 {
			line += fmt.Sprintf(", %.0f× beyond the largest size measured", ph.Extrapolation)
		}
		lines = append(lines, line)
	}
	return append(lines, p.Advice)
}

func trimFloat(f float64) string { return fmt.Sprintf("%g", f) }
