package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// String writes the quantity the way people read it: "4 min 12 s", "99.5%", "3 rows", "ok".
func (q Quantity) String() string {
	switch q.Unit {
	case UnitDuration:
		return Words(time.Duration(math.Round(q.Value * float64(time.Second))))
	case UnitPercent:
		return Percent(q.Value)
	case UnitRows:
		return Count(int64(q.Value), "row")
	default:
		if q.Value == 1 {
			return "ok"
		}
		return "not ok"
	}
}

// Words writes a duration in plain words at a precision a person cares about: "850 ms",
// "12.4 s", "4 min 12 s", "2 h 5 min". Scorecards are read by people, not parsers.
func Words(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + Words(-d)
	case d == 0:
		return "0 s"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64) + " s"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second).Seconds()))
	case d < time.Hour:
		d = d.Round(time.Second)
		return joinUnits(int(d/time.Minute), "min", int(d%time.Minute/time.Second), "s")
	default:
		d = d.Round(time.Minute)
		return joinUnits(int(d/time.Hour), "h", int(d%time.Hour/time.Minute), "min")
	}
}

// joinUnits writes "4 min 12 s", dropping a zero second part ("15 min").
func joinUnits(big int, bigUnit string, small int, smallUnit string) string {
	if small == 0 {
		return fmt.Sprintf("%d %s", big, bigUnit)
	}
	return fmt.Sprintf("%d %s %d %s", big, bigUnit, small, smallUnit)
}

// MS writes a millisecond figure from the model in words; "not measured" for nil, so an
// absent measure never reads as zero.
func MS(ms *int64) string {
	if ms == nil {
		return "not measured"
	}
	return Words(time.Duration(*ms) * time.Millisecond)
}

// Percent writes a percentage with at most two decimals, never rounding a shortfall up to
// 100%: 99.996% of rows back is not all of them.
func Percent(p float64) string {
	s := strconv.FormatFloat(math.Floor(p*100)/100, 'f', -1, 64)
	return s + "%"
}

// Count writes n with thousands separators and the noun, plural when n != 1: "1 row",
// "48,210 rows".
func Count(n int64, noun string) string {
	if n != 1 {
		noun += "s"
	}
	return Thousands(n) + " " + noun
}

// Thousands writes n with comma thousands separators, for figures people compare at a glance.
func Thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ShardName names a span's shard for people: "shard 2", or "cluster" for -1.
func ShardName(shard int) string {
	if shard < 0 {
		return "cluster"
	}
	return "shard " + strconv.Itoa(shard)
}
