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
	tlTop    = 34.0  // room for two levels of event labels
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
	if o, ok := r.Objective("rto"); ok && o.Threshold.Unit == UnitDuration && r.Incident.Kind != "" {
		deadline = origin + int64(o.Threshold.Value*1000)
		end = max(end, deadline)
		objective = o.Threshold.String()
	}
	c := timelineChart{Width: tlWidth, PlotLeft: tlLabel, PlotRight: tlWidth - tlRight}
	scale := (c.PlotRight - c.PlotLeft) / float64(end-origin)
	x := func(ms int64) float64 { return round1(c.PlotLeft + float64(max(ms, origin)-origin)*scale) }

	type key struct {
		name  string
		shard int
	}
	var order []key
	bars := map[key][]Span{}
	var desc []string
	for _, s := range r.Timeline {
		if s.EndMS < origin {
			continue
		}
		if s.Kind == KindEvent {
			mark := timelineMark{X: x(s.StartMS), Y: 10, Label: s.Name}
			// A label close to the previous one goes on the second level, so they never overlap.
			if n := len(c.Events); n > 0 && mark.X-c.Events[n-1].X < 60 && c.Events[n-1].Y == 10 {
				mark.Y = 21
			}
			c.Events = append(c.Events, mark)
			desc = append(desc, fmt.Sprintf("%s at %s", s.Name, Words(ms(s.StartMS-origin))))
			continue
		}
		k := key{s.Name, s.Shard}
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
	if deadline > 0 {
		c.Deadline = &timelineMark{X: x(deadline), Label: "RTO objective " + objective}
		desc = append(desc, "RTO objective at "+Words(ms(deadline-origin)))
	}
	c.Desc = "Timeline from the incident: " + strings.Join(desc, "; ") + "."
	return c
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
