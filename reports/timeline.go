package reports

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Geometry of the phase timeline chart, in SVG user units.
const (
	tlWidth  = 700.0 // whole chart
	tlLabel  = 150.0 // left column holding the row labels
	tlRight  = 28.0  // room for the last tick label
	tlTop    = 45.0  // room for the deadline's label and two levels of event labels
	tlRow    = 13.0  // one bar row
	tlBottom = 22.0  // room for the axis labels
)

// timelineChart is the phase timeline, laid out: one row per phase and shard, events as
// vertical lines, the RTO objective as a deadline. Its Desc is the chart's text equivalent.
type timelineChart struct {
	Width, Height float64
	Desc          string
	Rows          []timelineRow
	Events        []timelineMark
	Ticks         []timelineMark
	Deadline      *timelineMark
	AxisY         float64
	PlotLeft      float64
	PlotRight     float64
}

type timelineRow struct {
	Label      string
	Y, TextY   float64
	X, W       float64
	Title      string
	Failed     bool
	ColorIndex int
	// Fault draws the row as a fault's band.
	Fault bool
}

type timelineMark struct {
	X, Y  float64
	Label string
}

// timeline lays the report's spans out. The window starts at the incident, where RTO starts
// (at the drill's start when there was none), and reaches the RTO deadline when there is an
// objective, so the margin to it is visible.
func timeline(r *Report) timelineChart {
	origin := int64(0)
	if r.Incident.Kind != "" {
		origin = r.Incident.AtMS
	}
	end := origin + 1
	for _, s := range r.Timeline {
		end = max(end, s.EndMS)
	}
	var deadline int64
	var objective string
	offChart := false
	if o, ok := r.Objective("rto"); ok && o.Threshold.Unit == UnitDuration && r.Incident.Kind != "" {
		deadline = origin + int64(o.Threshold.Value*1000)
		objective = o.Threshold.String()
		// A deadline far beyond the work would squeeze every phase into the first pixels: the
		// chart then ends with the work and says where the deadline is instead.
		if offChart = deadline-origin > offChartFactor*(end-origin); !offChart {
			end = max(end, deadline)
		}
	}
	c := timelineChart{Width: tlWidth, PlotLeft: tlLabel, PlotRight: tlWidth - tlRight}
	scale := (c.PlotRight - c.PlotLeft) / float64(end-origin)
	x := func(ms int64) float64 { return round1(c.PlotLeft + float64(max(ms, origin)-origin)*scale) }

	type key struct {
		name  string
		shard int
	}
	var order []key
	var labels eventLabels
	bars := map[key][]Span{}
	faults := map[key]bool{}
	var desc []string
	for _, s := range r.Timeline {
		if s.EndMS < origin {
			continue
		}
		if s.Kind == KindEvent {
			c.Events = append(c.Events, labels.place(x(s.StartMS), s.Name))
			desc = append(desc, fmt.Sprintf("%s at %s", s.Name, Words(ms(s.StartMS-origin))))
			continue
		}
		k := key{s.Name, s.Shard}
		faults[k] = faults[k] || s.Kind == KindFault
		if _, seen := bars[k]; !seen {
			order = append(order, k)
		}
		bars[k] = append(bars[k], s)
	}
	colors := map[string]int{}
	for i, k := range order {
		if _, ok := colors[k.name]; !ok {
			colors[k.name] = len(colors) % 6
		}
		spans := bars[k]
		first, last := spans[0].StartMS, spans[0].EndMS
		failed := false
		for _, s := range spans {
			first, last = min(first, s.StartMS), max(last, s.EndMS)
			failed = failed || s.Error != ""
		}
		y := tlTop + float64(i)*tlRow
		row := timelineRow{
			Label: k.name + " · " + ShardName(k.shard), Y: y + 1.5, TextY: y + 10,
			X: x(first), W: math.Max(1.5, round1(x(last)-x(first))), Failed: failed, ColorIndex: colors[k.name],
			Fault: faults[k],
		}
		row.Title = fmt.Sprintf("%s on %s: from %s to %s (%s)", k.name, ShardName(k.shard),
			Words(ms(first-origin)), Words(ms(last-origin)), Words(ms(last-first)))
		if failed {
			row.Title += ", failed"
		}
		c.Rows = append(c.Rows, row)
		desc = append(desc, row.Title)
	}
	c.AxisY = tlTop + float64(len(order))*tlRow + 4
	c.Height = c.AxisY + tlBottom
	step := tickStep(end - origin)
	for t := int64(0); t <= end-origin; t += step {
		c.Ticks = append(c.Ticks, timelineMark{X: x(origin + t), Label: Words(ms(t))})
	}
	switch {
	case offChart:
		c.Deadline = &timelineMark{X: c.PlotRight, Label: fmt.Sprintf("RTO objective %s: off the chart, %.0f× this", objective,
			math.Floor(float64(deadline-origin)/float64(end-origin)))}
		desc = append(desc, "RTO objective at "+Words(ms(deadline-origin))+", beyond the end of the chart")
	case deadline > 0:
		c.Deadline = &timelineMark{X: x(deadline), Label: "RTO objective " + objective}
		desc = append(desc, "RTO objective at "+Words(ms(deadline-origin)))
	}
	c.Desc = "Timeline from the incident: " + strings.Join(desc, "; ") + "."
	return c
}

// offChartFactor is how many times longer than the work an RTO deadline may be and still be
// drawn to scale.
const offChartFactor = 4

// eventLabelGap is the closest two event labels on one level may be, in SVG units.
const eventLabelGap = 60

// eventLabels places the labels of a chart's events on two levels so that none overlaps another:
// a label goes on the first level with room, and an event with no room on either, or named like
// the last one near it (a harm on every shard at once), is drawn without a label.
type eventLabels struct {
	last [2]*timelineMark
}

// eventLevels are the baselines of the two levels, below the deadline's label (at 10).
var eventLevels = [2]float64{21, 32}

func (l *eventLabels) place(x float64, name string) timelineMark {
	for _, prev := range l.last {
		if prev != nil && prev.Label == name && x-prev.X < eventLabelGap {
			return timelineMark{X: x}
		}
	}
	for i, prev := range l.last {
		if prev == nil || x-prev.X >= eventLabelGap {
			m := timelineMark{X: x, Y: eventLevels[i], Label: name}
			l.last[i] = &m
			return m
		}
	}
	return timelineMark{X: x}
}

// tickStep picks the smallest round tick interval giving at most six ticks over span
// milliseconds.
func tickStep(span int64) int64 {
	for _, s := range tickSteps {
		if span/s <= 6 {
			return s
		}
	}
	return tickSteps[len(tickSteps)-1]
}

// tickSteps are the round intervals, in milliseconds, that a person reads off an axis.
var tickSteps = []int64{
	1, 2, 5, 10, 20, 50, 100, 200, 500,
	1e3, 2e3, 5e3, 10e3, 15e3, 30e3,
	60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3,
	3600e3, 2 * 3600e3, 6 * 3600e3, 12 * 3600e3, 24 * 3600e3,
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

func round1(f float64) float64 { return math.Round(f*10) / 10 }
