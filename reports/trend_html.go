package reports

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"strings"
)

//go:embed trend.html.tmpl
var trendTemplate string

var trendTmpl = template.Must(template.New(FileTrendHTML).Funcs(templateFuncs).Parse(trendTemplate))

// Geometry of the trend charts, in SVG user units.
const (
	trWidth   = 460.0
	trHeight  = 120.0
	trLeft    = 48.0 // room for the RTO axis labels
	trPad     = 12.0
	trBars    = 60.0
	trMaxRuns = 10 // runs listed per scenario; trend.json has all
	trMaxWeek = 12 // weeks drawn per scenario
)

type trendView struct {
	T         *TrendReport
	Scenarios []scenarioView
}

type scenarioView struct {
	S       ScenarioTrend
	Last    *TrendRun
	Recent  []TrendRun
	RTO     rtoTrendChart
	Weeks   []weekBar
	WeekAll string
}

// rtoTrendChart is the RTO of each run over time, with the objective line; Desc is its text.
type rtoTrendChart struct {
	Points    []trendPoint
	Line      string
	Objective *trendMark
	Max       string
	Desc      string
}

type trendPoint struct {
	X, Y  float64
	Shape string // "pass", "fail" or "unknown": a circle, a cross or a triangle
	Title string
}

type trendMark struct {
	Y     float64
	Label string
}

type weekBar struct {
	X, Y, H float64
	Label   string
	Rate    string
}

// TrendHTML renders the trend page: every scenario's last run, pass rate and age first (with
// the scenarios not run lately flagged in words), then per scenario the RTO of each run
// against its objective and the weekly pass rate, as inline SVG with text equivalents. Like
// the scorecard it is one self-contained file that requests nothing.
func TrendHTML(t *TrendReport) ([]byte, error) {
	v := trendView{T: t}
	for _, s := range t.Scenarios {
		sv := scenarioView{S: s, Last: s.Last(), RTO: rtoTrend(s)}
		sv.Recent = s.Runs[max(0, len(s.Runs)-trMaxRuns):]
		sv.Weeks, sv.WeekAll = weekBars(s.Weeks)
		v.Scenarios = append(v.Scenarios, sv)
	}
	var buf bytes.Buffer
	if err := trendTmpl.Execute(&buf, v); err != nil {
		return nil, fmt.Errorf("render trend: %w", err)
	}
	return buf.Bytes(), nil
}

// rtoTrend places each measured run by time (x) and RTO (y), on a scale that shows the
// objective too.
func rtoTrend(s ScenarioTrend) rtoTrendChart {
	var c rtoTrendChart
	top := int64(1)
	for _, r := range s.Runs {
		if r.RTOMS != nil {
			top = max(top, *r.RTOMS)
		}
	}
	if s.RTOObjectiveMS != nil {
		top = max(top, *s.RTOObjectiveMS)
	}
	top = top * 11 / 10
	c.Max = Words(ms(top))
	y := func(v int64) float64 { return round1(trHeight - trPad - (trHeight-2*trPad)*float64(v)/float64(top)) }
	if len(s.Runs) == 0 {
		c.Desc = "No runs."
		return c
	}
	first, last := s.Runs[0].Started, s.Runs[len(s.Runs)-1].Started
	span := last.Sub(first)
	var line, desc []string
	for _, r := range s.Runs {
		x := (trLeft + trWidth - trPad) / 2
		if span > 0 {
			x = trLeft + (trWidth-trLeft-trPad)*float64(r.Started.Sub(first))/float64(span)
		}
		x = round1(x)
		out := outcomeOf(r.Passed, r.Verdict != Fail && !r.Passed)
		text := fmt.Sprintf("%s: %s %s, RTO %s", r.Started.Format("2006-01-02 15:04"), out.Symbol, r.Verdict, MS(r.RTOMS))
		desc = append(desc, text)
		if r.RTOMS == nil {
			continue
		}
		p := trendPoint{X: x, Y: y(*r.RTOMS), Shape: out.Class, Title: text}
		c.Points = append(c.Points, p)
		line = append(line, fmt.Sprintf("%g,%g", p.X, p.Y))
	}
	c.Line = strings.Join(line, " ")
	if s.RTOObjectiveMS != nil {
		c.Objective = &trendMark{Y: y(*s.RTOObjectiveMS), Label: "objective " + MS(s.RTOObjectiveMS)}
		desc = append(desc, "RTO objective "+MS(s.RTOObjectiveMS))
	}
	c.Desc = "RTO per run, oldest first: " + strings.Join(desc, "; ") + "."
	return c
}

// weekBars draws the latest weeks' pass rates as bars, and says them all in words.
func weekBars(weeks []WeekRate) ([]weekBar, string) {
	shown := weeks[max(0, len(weeks)-trMaxWeek):]
	width := (trWidth - trLeft) / float64(trMaxWeek)
	var bars []weekBar
	var words []string
	for i, w := range shown {
		h := round1((trBars - 24) * w.Rate / 100)
		bars = append(bars, weekBar{
			X: round1(trLeft + float64(i)*width + 2), Y: round1(trBars - 12 - h), H: h,
			Label: w.Week[5:], Rate: Percent(w.Rate),
		})
	}
	for _, w := range weeks {
		words = append(words, fmt.Sprintf("week of %s: %d of %d passed (%s)", w.Week, w.Passed, w.Runs, Percent(w.Rate)))
	}
	return bars, "Pass rate per week: " + strings.Join(words, "; ") + "."
}
